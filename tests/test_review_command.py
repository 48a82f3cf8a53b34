"""`tables review` start-up (the server itself replaced): address, host check, warnings."""

import pytest
from click.testing import CliRunner

from sphaera_tables.cli import main


@pytest.fixture
def served(monkeypatch):
    """What `tables review` would serve: the app and the address, without listening."""
    calls = []
    import waitress

    monkeypatch.setattr(waitress, "serve", lambda app, **options: calls.append((app, options)))
    return calls


def test_review_listens_on_this_computer_only_by_default(review_results, served):
    result = CliRunner().invoke(main, ["review", str(review_results), "--no-browser",
                                       "--user", "ana"])
    assert result.exit_code == 0, result.output
    ((app, options),) = served
    assert (options["host"], options["port"]) == ("127.0.0.1", 8765)
    assert "warning" not in result.output
    assert "at http://127.0.0.1:8765/ " in result.output
    client = app.test_client()
    assert client.get("/", headers={"Host": "192.168.1.9:8765"}).status_code == 400


def test_another_address_is_served_with_a_warning(review_results, served):
    result = CliRunner().invoke(main, ["review", str(review_results), "--no-browser",
                                       "--host", "0.0.0.0", "--port", "9000"])
    assert result.exit_code == 0, result.output
    assert "warning: listening on 0.0.0.0" in result.output
    ((app, options),) = served
    assert (options["host"], options["port"]) == ("0.0.0.0", 9000)
    assert app.test_client().get("/", headers={"Host": "192.168.1.9:9000"}).status_code == 200


def test_a_folder_that_is_not_a_results_folder_is_refused(tmp_path, served):
    for command in ("review", "verdicts"):
        result = CliRunner().invoke(main, [command, str(tmp_path), "--no-browser"]
                                    if command == "review" else [command, str(tmp_path)])
        assert result.exit_code == 1
        assert "not a results folder" in result.output
    assert served == []
    assert not (tmp_path / "verdicts.sqlite").exists()


def test_verdicts_refuses_export_and_import_together(review_results, tmp_path):
    (tmp_path / "in.csv").write_text("page_a,page_b,verdict\n")
    result = CliRunner().invoke(main, ["verdicts", str(review_results), "--export",
                                       str(tmp_path / "out.csv"), "--import",
                                       str(tmp_path / "in.csv")])
    assert result.exit_code == 2 and "not both" in result.output
