from gradcheck._cli import main

main()
