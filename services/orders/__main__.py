from services.orders.server import main

main()
