from pcreg.cli import main

raise SystemExit(main())
