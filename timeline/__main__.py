"""``python -m timeline``: the same CLI as the ``timeline`` command."""

from timeline.cli import app

if __name__ == "__main__":
    app()
