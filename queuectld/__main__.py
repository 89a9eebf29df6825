from queuectld.main import main

main()
