from bff.server import main

main()
