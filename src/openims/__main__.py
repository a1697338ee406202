from openims.cli.main import main

raise SystemExit(main())
