from openims.cli import main

raise SystemExit(main())
