"""Parses each message named on the command line with GMime (through
Debian's python3-gi, so run with /usr/bin/python3) and prints one JSON
object per message: whether GMime parsed it, the MIME types of its parts,
its Subject and its attachment names. (GMime's parser warnings are not
reachable through GObject introspection.)"""

import json
import sys

import gi

gi.require_version("GMime", "3.0")
from gi.repository import GMime  # noqa: E402

GMime.init()


def check(path):
    options = GMime.ParserOptions.new()
    with open(path, "rb") as f:
        stream = GMime.StreamMem.new_with_buffer(f.read())
    parser = GMime.Parser.new_with_stream(stream)
    message = parser.construct_message(options)
    if message is None:
        return {"parsed": False}
    types, names = [], []

    def visit(parent, part, *_):
        types.append(part.get_content_type().get_mime_type())
        if isinstance(part, GMime.Part) and part.get_filename():
            names.append(part.get_filename())

    message.foreach(visit)  # the message's own part too
    return {"parsed": True, "types": types, "subject": message.get_subject() or "",
            "names": names}


print(json.dumps({path: check(path) for path in sys.argv[1:]}))
