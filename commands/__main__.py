from sipcli.commands import main

main(prog_name="sipcli")
