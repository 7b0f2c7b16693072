from services.wallet.server import main

main()
