# Installs the loopback-only network guard in every Python process the tests start.
import ssmex_network_guard

ssmex_network_guard.install()
