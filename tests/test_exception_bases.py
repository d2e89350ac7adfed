"""Issue 26, part 4: a remote exception of a library type is, in the notebook,
an instance of the builtin types it derives from, with its attributes."""


def test_remote_json_error_is_caught_as_value_error(connected):
    cell = connected.ok(
        "try:\n    r.modules.json.loads('{bad')\nexcept ValueError as e:\n    caught = e\n"
        "print(type(caught).__name__, isinstance(caught, ValueError), caught.pos, caught.lineno)"
    )
    assert cell.stdout == "JSONDecodeError True 1 1\n"


def test_remote_cell_error_keeps_builtin_bases_and_attributes(connected):
    cell = connected.ok(
        "try:\n    %remote __import__('json').loads('[1,')\nexcept ValueError as e:\n    caught = e\n"
        "print(type(caught).__name__, isinstance(caught, ValueError), caught.pos)"
    )
    assert cell.stdout == "JSONDecodeError True 3\n"
    cell = connected.ok(
        "try:\n    %remote __import__('json').loads('x')\nexcept Exception as e:\n    caught = e\nprint(str(caught))"
    )
    assert cell.stdout == "Expecting value: line 1 column 1 (char 0)\n"


def test_oserror_subclasses_keep_errno(connected):
    connected.ok(
        "%%remote\nclass DeviceGone(OSError):\n    pass\n"
        "def unplug():\n    raise DeviceGone(19, 'No such device', '/dev/cam0')\n"
    )
    cell = connected.ok(
        "import errno\ntry:\n    r.namespace['unplug']()\nexcept OSError as e:\n    caught = e\n"
        "print(type(caught).__name__, caught.errno == errno.ENODEV, caught.strerror, caught.filename)"
    )
    assert cell.stdout == "DeviceGone True No such device /dev/cam0\n"
    cell = connected.ok(
        "try:\n    %remote unplug()\nexcept OSError as e:\n    caught = e\n"
        "print(type(caught).__name__, caught.errno, caught.filename)"
    )
    assert cell.stdout == "DeviceGone 19 /dev/cam0\n"
    cell = connected.ok(
        "try:\n    r.modules.os.stat('/no/such/file')\nexcept FileNotFoundError as e:\n    caught = e\n"
        "print(caught.errno == errno.ENOENT, caught.filename)"
    )
    assert cell.stdout == "True /no/such/file\n"


def test_shown_the_same_way(connected):
    cell = connected.run("%remote __import__('json').loads('{bad')")
    assert cell.error["ename"] == "JSONDecodeError"
    assert "json.decoder.JSONDecodeError: Expecting property name" in cell.error_text
