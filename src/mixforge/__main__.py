from mixforge.cli.app import main

main()
