"""Issue 23 part 6: lines many hosts print alike, shown once (kernel/collapse.py), with a clock we move."""

from jupyter_rsym.kernel.collapse import Collapser


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_first_copy_shown_others_counted_and_said_once_the_window_passed():
    clock = Clock()
    c = Collapser(2.0, clock)
    assert c.keep("w0", "stdout", ["step 1"]) == ["step 1"]
    assert c.keep("w1", "stdout", ["step 1", "only w1"]) == ["only w1"]
    assert c.keep("w2", "stderr", ["step 1"]) == ["step 1"]  # another stream is another line
    assert c.keep("w3", "stdout", ["step 1"]) == []
    assert c.due() == []  # the window is still open
    clock.now = 2.5
    assert c.due() == [("stdout", "step 1 [repeated on 2 more hosts: w1, w3]")]
    assert c.due() == []  # said once


def test_a_host_repeating_its_own_line_is_shown_each_time():
    c = Collapser(2.0, Clock())
    assert c.keep("w0", "stdout", ["tick", "tick"]) == ["tick", "tick"]
    assert c.keep("w1", "stdout", ["tick"]) == []
    assert c.keep("w1", "stdout", ["tick"]) == ["tick"]  # w1's own second copy
    assert c.due(everything=True) == [("stdout", "tick [repeated on 1 more host: w1]")]


def test_a_late_copy_starts_a_new_count_after_saying_the_old_one():
    clock = Clock()
    c = Collapser(1.0, clock)
    c.keep("w0", "stdout", ["done"])
    c.keep("w1", "stdout", ["done"])
    clock.now = 5.0
    assert c.keep("w2", "stdout", ["done"]) == ["done"]
    assert c.due() == [("stdout", "done [repeated on 1 more host: w1]")]


def test_many_hosts_are_listed_up_to_six():
    c = Collapser(2.0, Clock())
    for i in range(64):
        c.keep(f"w{i}", "stdout", ["step 1"])
    assert c.due(everything=True) == [("stdout", "step 1 [repeated on 63 more hosts: w1, w2, w3, w4, w5, w6, ...]")]
