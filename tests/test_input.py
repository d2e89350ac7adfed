"""Issue 16: remote input() and getpass ask the notebook user through the kernel's stdin channel.

Only the cell that caused the call may ask, while it runs and if its
frontend allows stdin; otherwise the remote gets EOFError with the reason,
at once.  Interrupting a cell that waits for an answer stops both sides.
"""

import time

from jupyter_rsym.remote import bundle

from .waits import TIMEOUT, Marker, wait_until

REFUSED = "EOFError: input() in remote code cannot ask the notebook user: "


def test_input_in_a_remote_cell_asks_the_user(connected):
    cell = connected.submit("%%remote\nprint('before')\nname = input('name? ')\nprint('hello', name)", allow_stdin=True)
    request = connected.answer("Ada")
    assert request == {"prompt": "name? ", "password": False, "parent": cell.msg_id}
    cell.wait().assert_ok()
    assert cell.outputs == [("stdout", "before\nhello Ada\n")]
    # output made before the question reached the cell before the question was asked
    (before, *_) = [m for m in cell.of_type("stream")]
    assert before["content"]["text"].startswith("before")
    assert connected.ok("%remote name").result["text/plain"] == "'Ada'"


def test_getpass_asks_for_a_password(connected):
    cell = connected.submit("%%remote\nimport getpass\nsecret = getpass.getpass()\nlen(secret)", allow_stdin=True)
    request = connected.answer("s3cret!")
    assert (request["prompt"], request["password"]) == ("Password: ", True)
    assert cell.wait().assert_ok().result["text/plain"] == "7"


def test_input_from_a_remote_call_and_a_thread_of_the_running_cell(connected):
    cell = connected.submit("r.builtins.input('direct? ')", allow_stdin=True)
    assert connected.answer("yes")["parent"] == cell.msg_id
    assert cell.wait().assert_ok().result["text/plain"] == "'yes'"

    cell = connected.submit(
        "%%remote\nimport threading\nanswers = []\n"
        "worker = threading.Thread(target=lambda: answers.append(input('from thread? ')))\n"
        "worker.start(); worker.join()\nanswers",
        allow_stdin=True,
    )
    assert connected.answer("thread answer")["parent"] == cell.msg_id
    assert cell.wait().assert_ok().result["text/plain"] == "['thread answer']"


def test_frontend_without_stdin_gets_eof_at_once(connected):
    start = time.monotonic()
    cell = connected.run("%%remote\nname = input('name? ')")
    assert time.monotonic() - start < 10  # at once: no hang until some timeout
    assert cell.error["ename"] == "EOFError"
    assert cell.error_text.splitlines()[-1] == REFUSED + (
        "this frontend does not accept input (the cell ran with allow_stdin off)"
    )
    assert "name = input('name? ')" in cell.error_text and "agent" not in cell.error_text
    assert connected.ok("%remote 1 + 1").result["text/plain"] == "2"


def test_finished_or_other_cell_gets_eof_with_the_reason(connected):
    connected.ok(
        "%%remote\nimport os, threading, time\n"
        "def ask_later(go, asked=None):\n"
        "    for _ in range(1000):  # until the test says go (bounded)\n"
        "        if os.path.exists(go):\n            break\n        time.sleep(0.01)\n"
        "    try:\n        input('too late? ')\n"
        "    except EOFError as e:\n        print('EOFError:', e)\n"
        "    if asked:\n        open(asked, 'w').close()\n"
    )
    go = Marker("go")
    finished = (
        connected.submit(
            f"%%remote\nthreading.Thread(target=ask_later, args=({str(go.path)!r},)).start()", allow_stdin=True
        )
        .wait()
        .assert_ok()
    )
    go.set()  # it asks once its cell has finished
    finished.wait_for(lambda c: "EOFError" in c.stdout, 10, "the refusal")
    assert finished.stdout == REFUSED + "the cell that caused it has finished (only the running cell can ask)\n"

    go, asked = Marker("go"), Marker("asked")
    starter = (
        connected.submit(
            f"%%remote\nthreading.Thread(target=ask_later, args=({str(go.path)!r}, {str(asked.path)!r})).start()",
            allow_stdin=True,
        )
        .wait()
        .assert_ok()
    )
    # another cell lets the thread ask, and runs until the thread was refused
    other = connected.submit(f"{go.touch}\n{asked.awaited}\nprint('other')", allow_stdin=True).wait()
    starter.wait_for(lambda c: "EOFError" in c.stdout, 10, "the refusal")
    assert starter.stdout == REFUSED + "another cell is running now (only the cell that caused it can ask)\n"
    assert other.outputs == [("stdout", "other\n")]


def test_interrupt_while_waiting_stops_both_sides(connected):
    cell = connected.submit(
        "%%remote\nstate = 'waiting'\ntry:\n    input('never answered? ')\n    state = 'answered'\n"
        "except BaseException as e:\n    state = type(e).__name__\n    raise",
        allow_stdin=True,
    )
    assert connected.input_request()["prompt"] == "never answered? "  # it waits for the answer
    connected.interrupt()
    cell.wait(10)
    assert cell.error["ename"] == "KeyboardInterrupt"
    # the remote's input() stopped too, with KeyboardInterrupt
    assert connected.ok("%remote state").result["text/plain"] == "'KeyboardInterrupt'"
    # and the next question is answered normally, in the cell that asks it
    cell = connected.submit("%%remote\ninput('again? ')", allow_stdin=True)
    assert connected.answer("fine")["parent"] == cell.msg_id
    assert cell.wait().assert_ok().result["text/plain"] == "'fine'"


def test_interrupting_a_cell_whose_remote_thread_asks_ends_the_question(connected):
    local = Marker("local code")
    connected.ok(
        "%%remote\nimport threading, time\nthread_state = []\ndef bg_ask():\n"
        f"    {local.awaited}  # asks once the cell runs its local code\n"
        "    try:\n        thread_state.append(input('bg? '))\n"
        "    except BaseException as e:\n        thread_state.append(f'{type(e).__name__}: {e}')"
    )
    # the cell runs local code; the remote thread's question is served in the background
    cell = connected.submit(
        f"r.modules.threading.Thread(target=r.namespace['bg_ask']).start()\nimport time\n{local.touch}\ntime.sleep(30)",
        allow_stdin=True,
    )
    assert connected.input_request()["parent"] == cell.msg_id
    connected.interrupt()
    cell.wait(10)
    assert cell.error["ename"] == "KeyboardInterrupt"
    wait_until(lambda: connected.ok("%remote thread_state").result["text/plain"] != "[]", what="the thread's answer")
    assert connected.ok("%remote thread_state").result["text/plain"] == (
        "['EOFError: " + REFUSED[len("EOFError: ") :] + "the cell that caused it has finished "
        "(only the running cell can ask)']"
    )


def ask_from_a_thread(kernel, answer):
    """A cell whose remote thread asks; answered through the stdin channel."""
    cell = kernel.submit(
        "%%remote\nimport threading\nanswers = []\n"
        "worker = threading.Thread(target=lambda: answers.append(input('from thread? ')))\n"
        "worker.start(); worker.join()\nanswers",
        allow_stdin=True,
    )
    assert kernel.answer(answer, TIMEOUT)["parent"] == cell.msg_id
    assert cell.wait(TIMEOUT).assert_ok().result["text/plain"] == repr([answer])


def test_an_interrupt_that_comes_while_the_answer_is_read_leaves_the_connection_usable(connected):
    """The notebook sends its answer to an interrupted input() and then asks
    the remote to stop the cell; under load the stop came while the remote
    read that answer, inside rpyc, whose receive lock it left held: a later
    cell whose remote thread asked hung (its answer was never read).  Here
    the remote reads the answer only once the interrupted cell has ended."""
    ended = Marker("interrupted cell ended")
    connected.ok(
        "%%remote\nimport sys, threading\n"
        f"_routes = sys.modules[{bundle.AGENT_NAME + '.routes'!r}]\n"
        "def read_late():  # this thread's next read of the link waits until the test says go\n"
        "    channel_type, me = type(_routes.current()[0].conn._channel), threading.get_ident()\n"
        "    poll = channel_type.poll\n"
        "    def late_poll(self, timeout):\n"
        "        ready = poll(self, timeout)\n"
        "        if ready and threading.get_ident() == me:\n"
        "            undo()\n"
        f"            {ended.awaited}\n"
        "        return ready\n"
        "    def undo():\n"
        "        channel_type.poll = poll\n"
        "    channel_type.poll = late_poll\n"
        "    return undo\n"
    )
    cell = connected.submit(
        "%%remote\nundo = read_late()\nlate_state = 'waiting'\ntry:\n    input('never answered? ')\n"
        "except BaseException as e:\n    late_state = type(e).__name__\n    raise\nfinally:\n    undo()",
        allow_stdin=True,
    )
    assert connected.input_request()["prompt"] == "never answered? "
    connected.interrupt()
    assert cell.wait(TIMEOUT).error["ename"] == "KeyboardInterrupt"
    ended.set()
    assert connected.ok("%remote late_state").result["text/plain"] == "'KeyboardInterrupt'"
    for n in range(10):  # each of them hung
        ask_from_a_thread(connected, f"answer {n}")
