from services.catalogue.server import main

main()
