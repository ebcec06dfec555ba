from streamqc.cli import main

main()
