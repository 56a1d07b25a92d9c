"""A failed cell's console line: a user mistake in full (model, file, fix), a crash as its
last traceback line pointing at error.txt, never terminal colour codes."""

from bench.runner import user_message


def test_user_mistakes_are_shown_whole_and_crashes_by_their_last_line():
    mistake = "model 'mine': samples/mine.npz: labels 10..12 out of range\nthe dataset has classes 0..9"
    assert user_message(mistake) == mistake.replace("\n", "\n    ")
    crash = 'Traceback (most recent call last):\n  File "x.py", line 1\nKeyError: 101\n'
    assert user_message(crash) == "KeyError: 101  (traceback: error.txt of the cell's run)"
    assert user_message("\x1b[31mRuntimeError\x1b[0m: boom") == "RuntimeError: boom"
