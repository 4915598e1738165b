from crawler.cli import main

# Guarded: the parse pool's worker processes (forkserver) import the main module again.
if __name__ == "__main__":
    main()
