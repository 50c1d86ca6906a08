from llmunix.cli import main

main()
