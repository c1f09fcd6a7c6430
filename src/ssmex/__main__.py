from ssmex.entry import main

raise SystemExit(main())
