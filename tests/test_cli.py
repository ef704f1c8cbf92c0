"""Bad options and bad paths get one clear line, never a traceback."""

from __future__ import annotations

import pytest

from hub.cli import main


@pytest.mark.parametrize(
    "argv,code,needle",
    [
        (["train", "--epochs", "x"], 2, "--epochs: must be a positive integer, got 'x'"),
        (["train", "--epochs", "0"], 2, "must be a positive integer"),
        (["train", "--trainable", "some"], 2, "invalid choice"),
        (["data", "validate", "/no/such/folder"], 2, "folder not found: /no/such/folder"),
        (["data", "split", "--gold-frac", "1.5"], 2, "must be between 0 and 1"),
        (["frobnicate"], 2, "invalid choice"),
        (["train"], 1, "pool"),
        (["evaluate", "--model", "/no/model"], 1, "pool"),
    ],
)
def test_bad_input_gets_one_line(argv, code, needle, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(["--home", str(tmp_path / "h"), *argv]))
    assert exc.value.code == code
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err and "Traceback" not in err


def test_data_validate_reports_a_folder_that_is_not_a_dataset(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    assert main(["data", "validate", str(tmp_path / "photos")]) == 1
    assert "neither split folders" in capsys.readouterr().err


def test_help_explains_each_train_option(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for opt in ("--weights", "--epochs", "--resume", "--target-sensitivity", "--image-size", "--device"):
        assert opt in out


def test_evaluate_rejects_an_unknown_model_reference(hub_paths, capsys):
    assert main(["--home", str(hub_paths.home), "evaluate", "--model", "s3://x", "--no-log"]) == 1
    assert "Invalid model 's3://x'" in capsys.readouterr().err
