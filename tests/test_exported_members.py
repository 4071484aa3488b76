import index


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in dir(index) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(index, name)).__name__ == "module"}
    assert set(index.__all__) - {"__version__"} == public - modules


def test_library_imports_no_web_or_cli_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, index, index.writing.build, index.retrieval.search, index.evaluation.evaluate; "
        "bad = [m for m in ('fastapi', 'typer', 'click', 'starlette') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
