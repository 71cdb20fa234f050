from vocabx.cli import main

raise SystemExit(main())
