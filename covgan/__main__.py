from covgan.cli import main

main()
