from services.miniapps.server import main

main()
