"""What the executable keeps of botocore's data (build/ssmex_bundle.py), checked without
building: every service the source calls is kept, the trimmed data creates each kept
client, and a dropped or partial model fails with one sentence."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import botocore
import pytest
from botocore.loaders import Loader

from ssmex.aws import AwsContext, AwsSettings
from ssmex.errors import ExitCode, SsmexError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "build"))

import ssmex_bundle  # noqa: E402

BOTOCORE = Path(botocore.__file__).parent
BOTOCORE_DATA = BOTOCORE / "data"
SOURCE = ROOT / "src" / "ssmex"


def trimmed_copy(destination: Path) -> Path:
    """Copy the botocore data files the executable keeps, as the spec selects them."""
    files = [str(path.relative_to(BOTOCORE_DATA)) for path in BOTOCORE_DATA.rglob("*") if path.is_file()]
    for relative in ssmex_bundle.kept_data_files(files):
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(BOTOCORE_DATA / relative, target)
    return destination


@pytest.fixture(scope="module")
def trimmed_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trimmed_copy(tmp_path_factory.mktemp("botocore-data"))


def context_with_data(*search_paths: Path) -> AwsContext:
    """An AwsContext whose botocore reads models only from search_paths, as the
    executable reads only its bundled data."""
    aws = AwsContext(AwsSettings(region="eu-west-1"))
    loader = Loader(extra_search_paths=[str(path) for path in search_paths], include_default_search_paths=False)
    aws.session.register_component("data_loader", loader)
    return aws


def test_source_calls_are_found():
    called = ssmex_bundle.services_ssmex_calls(SOURCE)

    assert "ssm" in called, "the scan for client(...) calls found no ssm client; is the pattern still right?"


def test_botocore_provider_calls_are_found():
    called = ssmex_bundle.services_botocore_providers_call(BOTOCORE)

    assert {"sts", "sso", "sso-oidc"} <= set(called)


def test_every_called_service_is_kept():
    missing = ssmex_bundle.missing_services(SOURCE, BOTOCORE)

    assert missing == {}, f"add these services to KEPT_SERVICES in build/ssmex_bundle.py: {missing}"


def test_scan_finds_each_call_form(tmp_path):
    (tmp_path / "calls.py").write_text(
        'aws.client("ec2")\n'
        "aws.client('kms', endpoint_url=url)\n"
        'session.create_client( "sts", region_name=region)\n'
        "self._client_creator('sso', config=config)\n"
        'create_nested_client(self._session, "sso-oidc", config=config)\n'
        "aws.ssm_client()\n"
    )

    called = ssmex_bundle.services_ssmex_calls(tmp_path)

    assert sorted(called) == ["ec2", "kms", "sso", "sso-oidc", "sts"]


def test_kept_services_exist_in_botocore():
    available = set(Loader().list_available_services("service-2"))

    assert set(ssmex_bundle.KEPT_SERVICES) <= available


@pytest.mark.parametrize("service", sorted(ssmex_bundle.KEPT_SERVICES))
def test_trimmed_data_creates_client(trimmed_data, service):
    client = context_with_data(trimmed_data).client(service)

    assert client.meta.service_model.service_name == service
    assert client.meta.endpoint_url.startswith("https://")


def test_trimmed_data_resolves_ssm_endpoint_in_china(trimmed_data):
    aws = context_with_data(trimmed_data)
    aws.region = "cn-north-1"

    assert aws.client("ssm").meta.endpoint_url == "https://ssm.cn-north-1.amazonaws.com.cn"


def test_dropped_service_fails_with_sentence(trimmed_data):
    with pytest.raises(SsmexError) as raised:
        context_with_data(trimmed_data).client("s3")

    assert "does not include the AWS service model for s3" in raised.value.message
    assert raised.value.exit_code == ExitCode.ERROR


def test_missing_partitions_fail_with_sentence(trimmed_data, tmp_path):
    # A build that drops a top-level file makes botocore raise DataNotFoundError, not
    # UnknownServiceError.
    partial = tmp_path / "partial"
    shutil.copytree(trimmed_data, partial)
    (partial / "partitions.json").unlink()

    with pytest.raises(SsmexError) as raised:
        context_with_data(partial).client("ssm")

    assert "Creating the ssm client failed because botocore's data is incomplete" in raised.value.message
    assert "partitions" in raised.value.message


def test_filter_keeps_startup_files_and_kept_services():
    datas = [
        ("botocore/data/endpoints.json", "/src/endpoints.json", "DATA"),
        ("botocore/data/partitions.json", "/src/partitions.json", "DATA"),
        ("botocore/data/sdk-default-configuration.json", "/src/sdk.json", "DATA"),
        ("botocore/data/_retry.json", "/src/_retry.json", "DATA"),
        ("botocore/data/ssm/2014-11-06/service-2.json.gz", "/src/ssm.gz", "DATA"),
        ("botocore/data/sso-oidc/2019-06-10/service-2.json.gz", "/src/sso-oidc.gz", "DATA"),
        ("botocore/data/sso-oidc/2019-06-10/endpoint-rule-set-1.json.gz", "/src/rules.gz", "DATA"),
        ("botocore/cacert.pem", "/src/cacert.pem", "DATA"),
        ("certifi/cacert.pem", "/src/certifi.pem", "DATA"),
    ]

    assert ssmex_bundle.filter_datas(datas) == datas


def test_filter_drops_other_services_and_examples():
    datas = [
        ("botocore/data/ec2/2016-11-15/service-2.json.gz", "/src/ec2-new.gz", "DATA"),
        ("botocore/data/ec2/2016-11-15/examples-1.json", "/src/ec2-examples.json", "DATA"),
        ("botocore/data/ec2/2015-10-01/service-2.json.gz", "/src/ec2-old.gz", "DATA"),
        ("botocore/data/ec2/2015-10-01/paginators-1.json", "/src/ec2-old-pages.json", "DATA"),
        ("botocore/data/s3/2006-03-01/service-2.json.gz", "/src/s3.gz", "DATA"),
        ("botocore/data/ssm/2014-11-06/examples-1.json", "/src/examples.json", "DATA"),
        ("botocore/data/ssm-incidents/2018-05-10/service-2.json.gz", "/src/incidents.gz", "DATA"),
    ]

    kept = ssmex_bundle.filter_datas(datas)

    assert [entry[0] for entry in kept] == ["botocore/data/ec2/2016-11-15/service-2.json.gz"]
