"""The command line called in this process, as a test sees it: (exit code, stdout, stderr)."""

from redline.cli import main


def cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err
