from ssmex.cli import main

raise SystemExit(main())
