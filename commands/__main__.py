from sipcli.commands import main

main()
