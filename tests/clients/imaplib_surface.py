#!/usr/bin/env python3
"""imaplib_surface: drives imapsim's IMAP command surface with Python's stdlib imaplib and smtplib.

Usage: imaplib_surface.py HOST IMAP_PORT LMTP_PORT USER PASSWORD

The test's own mailboxes (Work, Keep, Reports) are deleted first if a previous run left them. Every response is checked against what the
RFCs require (RFC 3501 IMAP4rev1, RFC 7162 CONDSTORE, RFC 6851 MOVE, RFC 2177 IDLE, RFC 2033 LMTP);
one line is printed per check. A mismatch is printed with the command, what came back and what was
expected; the run goes on where it can, and the script exits with status 1 after listing every
mismatch (or at once, with a traceback, when a response leaves it unable to go on).
"""

import imaplib
import re
import smtplib
import socket
import sys
import traceback

TIMEOUT_SECONDS = 60

# imaplib knows neither ID (RFC 2971) nor IDLE before 3.14; teach it the states they are valid in.
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))

CHECKS = 0
FAILURES = []


class Mismatch(Exception):
    """A response the script cannot go on from."""


def check(condition, what, got=None, expected=None):
    """Records one check and prints it; a failed check is kept, and reported again at the end."""
    global CHECKS
    CHECKS += 1
    if condition:
        print(f"ok   {CHECKS:3} {what}", flush=True)
        return True
    detail = f"check {CHECKS}: {what}\n    got:      {got!r}"
    if expected is not None:
        detail += f"\n    expected: {expected!r}"
    FAILURES.append(detail)
    print(f"FAIL {detail}", flush=True)
    return False


def ok(result, what):
    """Checks that an imaplib call answered OK and returns its data."""
    typ, data = result
    check(typ == "OK", f"{what}: tagged OK", (typ, data), "OK")
    return data


def no(imap, fn, what):
    """Checks that a command is refused with a tagged NO (imaplib raises IMAP4.error for NO/BAD)."""
    try:
        typ, data = fn()
    except imaplib.IMAP4.error as e:
        typ, data = "NO", [str(e).encode()]
    check(typ == "NO", f"{what}: tagged NO", (typ, data), "NO")


def text(data):
    """Joins an imaplib data list (bytes and (header, literal) tuples) into one bytes string."""
    out = b""
    for item in data:
        if isinstance(item, tuple):
            out += item[0] + item[1]
        elif item is not None:
            out += item
    return out


def fetch_map(data):
    """Parses imaplib FETCH data into {seq: (attributes bytes, [literals])}."""
    result = {}
    current = None
    for item in data:
        if isinstance(item, tuple):
            head, literal = item
            m = re.match(rb"(\d+) \(", head)
            if m:
                current = int(m.group(1))
                result[current] = [head, [literal]]
            else:
                result[current][0] += head
                result[current][1].append(literal)
        elif item == b")":
            continue
        elif item is not None:
            m = re.match(rb"(\d+) \(", item)
            if m:
                current = int(m.group(1))
                result[current] = [item, []]
            elif current is not None:
                result[current][0] += item
    return {k: (v[0], v[1]) for k, v in result.items()}


def attr(head, name):
    """The value of a simple FETCH attribute (UID, RFC822.SIZE, MODSEQ (n)) in a response head."""
    m = re.search(rb"\b" + re.escape(name.encode()) + rb" \(?(\d+)\)?", head)
    return int(m.group(1)) if m else None


def flags_of(head):
    m = re.search(rb"FLAGS \(([^)]*)\)", head)
    return set(m.group(1).decode().split()) if m else None


def parse_list(data):
    """Parses LIST/LSUB data into [(attributes, delimiter or None, name)]."""
    out = []
    for d in data:
        if not d:
            continue
        m = re.match(rb'\(([^)]*)\) (NIL|"(\\?.)") (.*)$', d)
        if not m:
            raise Mismatch(f"unparsable LIST response {d!r}")
        name = m.group(4)
        if name.startswith(b'"'):
            name = re.sub(rb'\\(.)', rb"\1", name[1:-1])
        delim = None if m.group(2) == b"NIL" else m.group(3).replace(b"\\", b"").decode()
        out.append((set(m.group(1).decode().split()), delim, name.decode()))
    return out


def search_ids(data):
    joined = b" ".join(d for d in data if d)
    return [int(x) for x in joined.split() if x.isdigit()]


def untagged(imap, name):
    """Takes imaplib's collected untagged responses of one kind (and clears them)."""
    _, data = imap.response(name)
    return [d for d in data if d is not None]


def message(n, subject, sender, body):
    return (
        f"From: {sender}\r\n"
        f"To: Alice <alice@example.org>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Mon, 1 Jan 2024 10:0{n}:00 +0000\r\n"
        f"Message-ID: <m{n}@example.org>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n"
        f"\r\n"
        f"{body}\r\n"
    ).encode()


MESSAGES = [
    message(1, "Quarterly report", "Bob <bob@example.org>", "The numbers are in: pineapple.\r\nLine two."),
    message(2, "Lunch?", "Carol <carol@example.org>", "Noon at the usual place."),
    message(3, "Re: Quarterly report", "Bob <bob@example.org>", "Second thoughts about the numbers."),
]

MULTIPART = (
    b"From: Dave <dave@example.org>\r\n"
    b"To: alice@example.org\r\n"
    b"Subject: Photos\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"See attached.\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQF\r\n"
    b"--XX--\r\n"
)


def run(host, imap_port, lmtp_port, user, password):
    imap = imaplib.IMAP4(host, imap_port, timeout=TIMEOUT_SECONDS)
    check(imap.welcome.startswith(b"* OK"), "greeting is * OK", imap.welcome)

    # --- Not authenticated state -------------------------------------------------------------
    caps = ok(imap.capability(), "CAPABILITY")
    cap_set = set(caps[0].decode().split())
    for cap in ("IMAP4rev1", "IDLE", "MOVE", "UNSELECT", "CONDSTORE", "ENABLE", "NAMESPACE", "ID"):
        check(cap in cap_set, f"CAPABILITY lists {cap}", caps)
    ok(imap.noop(), "NOOP before login")
    no(imap, lambda: imap.select("INBOX"), "SELECT before login is refused")
    no(imap, lambda: imap.login(user, password + "-wrong"), "LOGIN with a wrong password")
    data = ok(imap.login(user, password), "LOGIN")
    check(imap.state == "AUTH", "imaplib is in AUTH state after LOGIN", imap.state)
    data = ok(imap._simple_command("ID", '("name" "imaplib_surface")'), "ID")
    check(bool(untagged(imap, "ID")), "ID answers an untagged * ID", data)
    ns = ok(imap.namespace(), "NAMESPACE")
    check(ns and ns[0].startswith(b"(("), "NAMESPACE gives a personal namespace", ns)

    # --- Mailboxes ----------------------------------------------------------------------------
    data = ok(imap.list('""', '""'), 'LIST "" "" (hierarchy delimiter)')
    listed = parse_list(data)
    check(len(listed) == 1 and r"\Noselect" in listed[0][0] and listed[0][2] == "",
          'LIST "" "" answers one \\Noselect entry with an empty name', data)
    sep = listed[0][1]
    check(sep is not None and len(sep) == 1, "the hierarchy delimiter is one character", sep)
    # A rerun against the same account starts from a clean slate (setup, not a check).
    for leftover in (f"Work{sep}Reports", "Work", "Keep", "Reports"):
        imap.delete(leftover)
    data = ok(imap.list(), 'LIST "" *')
    baseline = {name for _, _, name in parse_list(data)}
    check("INBOX" in baseline, "LIST shows INBOX", data)
    check(all(d == sep for _, d, _ in parse_list(data)), "LIST gives the same delimiter for every mailbox", data)
    check(not baseline & {"Work", "Keep", f"Work{sep}Reports"}, "the test's mailboxes do not exist yet", baseline)
    ok(imap.create("Work"), "CREATE Work")
    ok(imap.create(f"Work{sep}Reports"), f"CREATE Work{sep}Reports")
    ok(imap.create("Keep"), "CREATE Keep")
    no(imap, lambda: imap.create("Keep"), "CREATE of an existing mailbox")
    data = ok(imap.list(), "LIST after CREATE")
    names = {name for _, _, name in parse_list(data)}
    expected = baseline | {"Work", f"Work{sep}Reports", "Keep"}
    check(names == expected, "LIST shows every mailbox, the new ones included", sorted(names), sorted(expected))
    data = ok(imap.list('""', f"Work{sep}%"), f'LIST "" Work{sep}%')
    check([n for _, _, n in parse_list(data)] == [f"Work{sep}Reports"], f"LIST Work{sep}% gives exactly Work{sep}Reports",
          data)
    data = ok(imap.list('""', "%"), 'LIST "" %')
    top = {n for _, _, n in parse_list(data)}
    expected = {n for n in names if sep not in n}
    check(top == expected, "LIST % gives the top-level mailboxes only", sorted(top), sorted(expected))
    data = ok(imap.list("Work" + sep, "*"), f'LIST Work{sep} * (a reference)')
    check([n for _, _, n in parse_list(data)] == [f"Work{sep}Reports"], "LIST prefixes the reference to the pattern",
          data)
    ok(imap.subscribe("Work"), "SUBSCRIBE Work")
    ok(imap.subscribe("Keep"), "SUBSCRIBE Keep")
    data = ok(imap.lsub(), "LSUB")
    subscribed = {n for _, _, n in parse_list(data)}
    check({"Work", "Keep"} <= subscribed, "LSUB shows the subscribed mailboxes", sorted(subscribed))
    check(subscribed <= names, "LSUB shows only existing mailboxes here", sorted(subscribed))
    ok(imap.unsubscribe("Keep"), "UNSUBSCRIBE Keep")
    data = ok(imap.lsub(), "LSUB after UNSUBSCRIBE")
    lsub = {n for _, _, n in parse_list(data)}
    check(lsub == subscribed - {"Keep"}, "UNSUBSCRIBE takes Keep, and only Keep, out of LSUB", sorted(lsub))
    data = ok(imap.lsub('""', "W%"), 'LSUB "" W%')
    check({n for _, _, n in parse_list(data)} == {"Work"}, "LSUB matches its pattern", data)
    ok(imap.rename(f"Work{sep}Reports", "Reports"), f"RENAME Work{sep}Reports Reports")
    data = ok(imap.list(), "LIST after RENAME")
    names = {n for _, _, n in parse_list(data)}
    check("Reports" in names, "RENAME target is listed", sorted(names))
    check(f"Work{sep}Reports" not in names, "RENAME source is gone", sorted(names))
    ok(imap.delete("Reports"), "DELETE Reports")
    data = ok(imap.list(), "LIST after DELETE")
    check("Reports" not in {n for _, _, n in parse_list(data)}, "DELETE removes the mailbox from LIST", data)
    no(imap, lambda: imap.delete("Reports"), "DELETE of a missing mailbox")
    no(imap, lambda: imap.select("Reports"), "SELECT of a deleted mailbox")
    no(imap, lambda: imap.delete("INBOX"), "DELETE INBOX")
    data = ok(imap.status("Work", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)"), "STATUS Work")
    st = data[0]
    check(re.search(rb"MESSAGES 0\b", st) and re.search(rb"UNSEEN 0\b", st), "STATUS of an empty mailbox", st)
    uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", st).group(1))
    check(uidvalidity > 0, "UIDVALIDITY is a non-zero number", st)

    # --- APPEND -------------------------------------------------------------------------------
    date = '"05-Feb-2024 13:14:15 +0100"'
    ok(imap.append("Work", r"(\Flagged)", date, MESSAGES[0]), "APPEND with a flag and a date")
    ok(imap.append("Work", None, None, MESSAGES[1]), "APPEND without flags")
    ok(imap.append("Work", r"(\Seen $Label1)", None, MESSAGES[2]), "APPEND with a keyword")
    ok(imap.append("Work", None, None, MULTIPART), "APPEND a multipart message")
    no(imap, lambda: imap.append("Nowhere", None, None, MESSAGES[0]), "APPEND to a missing mailbox")
    data = ok(imap.status("Work", "(MESSAGES UIDNEXT UNSEEN DELETED HIGHESTMODSEQ)"), "STATUS after APPEND")
    st = data[0]
    check(re.search(rb"MESSAGES 4\b", st), "STATUS counts 4 messages", st)
    check(re.search(rb"UNSEEN 3\b", st), "STATUS counts 3 unseen", st)
    check(re.search(rb"UIDNEXT (\d+)", st) and int(re.search(rb"UIDNEXT (\d+)", st).group(1)) >= 5,
          "UIDNEXT is past the 4 UIDs given", st)
    check(re.search(rb"DELETED 0\b", st), "STATUS DELETED 0", st)
    check(re.search(rb"HIGHESTMODSEQ \d+", st), "STATUS HIGHESTMODSEQ is a number", st)

    # --- EXAMINE: read-only -------------------------------------------------------------------
    data = ok(imap.select("Work", readonly=True), "EXAMINE Work")
    check(data == [b"4"], "EXAMINE reports 4 EXISTS", data)
    check("READ-ONLY" in imap.untagged_responses, "EXAMINE answers OK [READ-ONLY]", imap.untagged_responses)
    no(imap, lambda: imap.store("1", "+FLAGS", r"(\Deleted)"), "STORE in an EXAMINEd mailbox")
    data = ok(imap.fetch("2", "(BODY[])"), "FETCH BODY[] in an EXAMINEd mailbox")
    data = ok(imap.fetch("2", "(FLAGS)"), "FETCH FLAGS after BODY[] in an EXAMINEd mailbox")
    check(r"\Seen" not in flags_of(text(data)), "BODY[] does not set \\Seen when read-only", data)

    # --- SELECT -------------------------------------------------------------------------------
    data = ok(imap.select("Work"), "SELECT Work")
    check(data == [b"4"], "SELECT reports 4 EXISTS", data)
    flags = untagged(imap, "FLAGS")
    check(flags and all(f in flags[0] for f in (b"\\Seen", b"\\Deleted", b"\\Flagged", b"\\Answered")),
          "SELECT gives the system FLAGS", flags)
    check(b"$Label1" in flags[0], "SELECT FLAGS includes the keyword in use", flags)
    uv = untagged(imap, "UIDVALIDITY")
    check(uv == [str(uidvalidity).encode()], "SELECT UIDVALIDITY matches STATUS", uv)
    un = untagged(imap, "UNSEEN")
    check(un == [b"1"], "SELECT gives OK [UNSEEN 1] (first unseen message, RFC 3501 6.3.1)", un, [b"1"])
    check(untagged(imap, "UIDNEXT"), "SELECT gives OK [UIDNEXT]", None)
    check(untagged(imap, "PERMANENTFLAGS"), "SELECT gives OK [PERMANENTFLAGS]", None)

    # --- FETCH --------------------------------------------------------------------------------
    data = ok(imap.fetch("1:*", "(UID FLAGS RFC822.SIZE)"), "FETCH 1:* (UID FLAGS RFC822.SIZE)")
    fm = fetch_map(data)
    check(sorted(fm) == [1, 2, 3, 4], "FETCH 1:* answers each message", sorted(fm))
    uids = [attr(fm[i][0], "UID") for i in (1, 2, 3, 4)]
    check(all(uids) and uids == sorted(uids) and len(set(uids)) == 4, "UIDs ascend strictly", uids)
    sizes = [attr(fm[i][0], "RFC822.SIZE") for i in (1, 2, 3, 4)]
    expected_sizes = [len(m) for m in MESSAGES + [MULTIPART]]
    check(sizes == expected_sizes, "RFC822.SIZE is the appended byte count", sizes, expected_sizes)
    # This session selected the mailbox first after the APPENDs: every message is \Recent in it
    # (RFC 3501; Dovecot does the same).
    check(flags_of(fm[1][0]) == {r"\Flagged", r"\Recent"}, "APPEND flags are kept", fm[1][0])
    check(flags_of(fm[2][0]) == {r"\Recent"}, "no flags on a plain APPEND", fm[2][0])
    check(flags_of(fm[3][0]) == {r"\Seen", "$Label1", r"\Recent"}, "APPEND keyword is kept", fm[3][0])

    data = ok(imap.fetch("1", "(INTERNALDATE)"), "FETCH INTERNALDATE")
    idate = text(data)
    check(b'"05-Feb-2024 13:14:15 +0100"' in idate or b'"05-Feb-2024 12:14:15 +0000"' in idate,
          "APPEND date is the INTERNALDATE", idate)

    data = ok(imap.fetch("1", "(ENVELOPE)"), "FETCH ENVELOPE")
    env = text(data)
    check(b'"Mon, 1 Jan 2024 10:01:00 +0000"' in env, "ENVELOPE date", env)
    check(b'"Quarterly report"' in env, "ENVELOPE subject", env)
    check(b'(("Bob" NIL "bob" "example.org"))' in env, "ENVELOPE from", env)
    check(b'(("Alice" NIL "alice" "example.org"))' in env, "ENVELOPE to", env)
    check(b'"<m1@example.org>"' in env, "ENVELOPE message-id", env)

    data = ok(imap.fetch("1", "(BODYSTRUCTURE)"), "FETCH BODYSTRUCTURE (single part)")
    bs = text(data).upper()
    check(b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT"' in bs, "BODYSTRUCTURE of text/plain", bs)
    data = ok(imap.fetch("4", "(BODYSTRUCTURE)"), "FETCH BODYSTRUCTURE (multipart)")
    bs = text(data).upper()
    check(b'"MIXED"' in bs and b'"APPLICATION" "OCTET-STREAM"' in bs and b'"BASE64"' in bs,
          "BODYSTRUCTURE of multipart/mixed", bs)

    for i, expected in enumerate(MESSAGES + [MULTIPART], start=1):
        data = ok(imap.fetch(str(i), "(BODY.PEEK[])"), f"FETCH {i} BODY.PEEK[]")
        got = fetch_map(data)[i][1]
        check(got == [expected], f"BODY.PEEK[] of {i} is the appended message byte for byte", got, [expected])
    data = ok(imap.fetch("2", "(FLAGS)"), "FETCH FLAGS after BODY.PEEK[]")
    check(r"\Seen" not in flags_of(text(data)), "BODY.PEEK[] leaves \\Seen unset", data)

    data = ok(imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])"), "FETCH BODY.PEEK[HEADER.FIELDS]")
    got = fetch_map(data)[1][1]
    exp = b"From: Bob <bob@example.org>\r\nSubject: Quarterly report\r\n\r\n"
    check(got == [exp], "HEADER.FIELDS gives the fields asked, in message order, and a blank line", got, [exp])
    data = ok(imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT FROM TO DATE MESSAGE-ID)])"),
              "FETCH BODY.PEEK[HEADER.FIELDS.NOT]")
    got = fetch_map(data)[1][1]
    exp = b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    check(got == [exp], "HEADER.FIELDS.NOT leaves out the fields named", got, [exp])
    data = ok(imap.fetch("1", "(BODY.PEEK[TEXT])"), "FETCH BODY.PEEK[TEXT]")
    exp = MESSAGES[0].split(b"\r\n\r\n", 1)[1]
    check(fetch_map(data)[1][1] == [exp], "BODY[TEXT] is the body after the blank line", data, exp)
    data = ok(imap.fetch("1", "(BODY.PEEK[]<5.10>)"), "FETCH BODY.PEEK[]<5.10> (partial)")
    head, lits = fetch_map(data)[1]
    check(b"BODY[]<5>" in head, "a partial answer is labelled BODY[]<5>", head)
    check(lits == [MESSAGES[0][5:15]], "partial gives 10 bytes from offset 5", lits, [MESSAGES[0][5:15]])
    data = ok(imap.fetch("4", "(BODY.PEEK[2])"), "FETCH BODY.PEEK[2] (a MIME part)")
    check(fetch_map(data)[4][1] == [b"AAECAwQF"], "BODY[2] is the second part's content", data)
    data = ok(imap.fetch("4", "(BODY.PEEK[1.MIME])"), "FETCH BODY.PEEK[1.MIME]")
    check(fetch_map(data)[4][1] == [b"Content-Type: text/plain; charset=utf-8\r\n\r\n"],
          "BODY[1.MIME] is the part's header", data)

    data = ok(imap.fetch("2", "(BODY[HEADER.FIELDS (SUBJECT)])"), "FETCH BODY[HEADER.FIELDS] (not peek)")
    data = ok(imap.fetch("2", "(FLAGS)"), "FETCH FLAGS after a non-peek BODY[]")
    check(r"\Seen" in flags_of(text(data)), "BODY[...] sets \\Seen (RFC 3501 6.4.5)", data)
    ok(imap.store("2", "-FLAGS.SILENT", r"(\Seen)"), "STORE -FLAGS.SILENT \\Seen")

    data = ok(imap.uid("FETCH", f"{uids[1]}:{uids[2]}", "(FLAGS)"), "UID FETCH a UID range")
    fm = fetch_map(data)
    check(sorted(fm) == [2, 3], "UID FETCH answers the messages in the range", sorted(fm))
    check(all(attr(fm[s][0], "UID") == uids[s - 1] for s in fm), "UID FETCH includes UID", data)
    data = ok(imap.uid("FETCH", f"{uids[3] + 100}:*", "(UID)"), "UID FETCH n:* past the last UID")
    fm = fetch_map(data)
    check(sorted(fm) == [4], "UID n:* with n past the end still gives the last message (RFC 3501 6.4.8)", data)

    # --- SEARCH -------------------------------------------------------------------------------
    def search(what, criteria, expected, uid=False):
        if uid:
            data = ok(imap.uid("SEARCH", *criteria), f"UID SEARCH {' '.join(criteria)}")
        else:
            data = ok(imap.search(None, *criteria), f"SEARCH {' '.join(criteria)}")
        got = search_ids(data)
        check(got == expected, what, got, expected)

    search("SEARCH ALL gives every message", ["ALL"], [1, 2, 3, 4])
    search("SEARCH FROM matches the sender", ["FROM", '"bob"'], [1, 3])
    search("SEARCH SUBJECT is a case-insensitive substring", ["SUBJECT", '"quarterly"'], [1, 3])
    search("SEARCH BODY searches the text", ["BODY", '"pineapple"'], [1])
    search("SEARCH TEXT searches headers and body", ["TEXT", '"usual place"'], [2])
    search("SEARCH UNSEEN", ["UNSEEN"], [1, 2, 4])
    search("SEARCH SEEN", ["SEEN"], [3])
    search("SEARCH FLAGGED", ["FLAGGED"], [1])
    search("SEARCH KEYWORD", ["KEYWORD", "$Label1"], [3])
    search("SEARCH NOT", ["NOT", "FROM", '"bob"'], [2, 4])
    search("SEARCH OR", ["OR", "FLAGGED", "SEEN"], [1, 3])
    search("SEARCH a sequence set", ["2:3"], [2, 3])
    search("SEARCH UID range", ["UID", f"{uids[1]}:{uids[3]}"], [2, 3, 4])
    search("UID SEARCH answers UIDs", ["UID", f"{uids[0]}:{uids[1]}"], [uids[0], uids[1]], uid=True)
    search("UID SEARCH FROM answers UIDs", ["FROM", '"carol"'], [uids[1]], uid=True)
    search("SEARCH LARGER", ["LARGER", str(len(MULTIPART) - 1)], [4])
    search("SEARCH HEADER", ["HEADER", "Message-ID", '"m2@"'], [2])
    search("SEARCH SENTSINCE", ["SENTSINCE", "1-Jan-2024"], [1, 2, 3])
    search("SEARCH with no match is empty", ["SUBJECT", '"no-such-subject"'], [])

    # --- STORE --------------------------------------------------------------------------------
    data = ok(imap.store("2", "+FLAGS", r"(\Answered $Work)"), "STORE +FLAGS")
    fm = fetch_map(data)
    check(2 in fm and flags_of(fm[2][0]) == {r"\Answered", "$Work"}, "STORE +FLAGS answers the new flags", data)
    data = ok(imap.store("2", "-FLAGS", r"(\Answered)"), "STORE -FLAGS")
    fm = fetch_map(data)
    check(2 in fm and flags_of(fm[2][0]) == {"$Work"}, "STORE -FLAGS answers the new flags", data)
    data = ok(imap.store("2", "FLAGS", r"(\Draft)"), "STORE FLAGS (replace)")
    fm = fetch_map(data)
    check(2 in fm and flags_of(fm[2][0]) == {r"\Draft"}, "STORE FLAGS replaces the flags", data)
    data = ok(imap.store("1:2", "+FLAGS.SILENT", r"(\Seen)"), "STORE +FLAGS.SILENT")
    check(not fetch_map(data), "FLAGS.SILENT answers no FETCH", data)
    data = ok(imap.fetch("1:2", "(FLAGS)"), "FETCH after a silent STORE")
    fm = fetch_map(data)
    check(flags_of(fm[1][0]) == {r"\Flagged", r"\Seen", r"\Recent"}
          and flags_of(fm[2][0]) == {r"\Draft", r"\Seen", r"\Recent"},
          "silent STORE still stored", data)
    data = ok(imap.uid("STORE", str(uids[1]), "-FLAGS", r"(\Draft)"), "UID STORE -FLAGS")
    fm = fetch_map(data)
    check(2 in fm and attr(fm[2][0], "UID") == uids[1] and flags_of(fm[2][0]) == {r"\Seen"},
          "UID STORE answers FETCH with UID and flags", data)
    data = ok(imap.store("1", "+FLAGS", r"(\Flagged)"), "STORE +FLAGS of a flag already set")
    fm = fetch_map(data)
    check(1 in fm and flags_of(fm[1][0]) == {r"\Flagged", r"\Seen"},
          "STORE answers the flags even when nothing changed (RFC 3501 6.4.6)", data)

    # --- COPY, MOVE, EXPUNGE ------------------------------------------------------------------
    ok(imap.copy("1:2", "Keep"), "COPY 1:2 Keep")
    no(imap, lambda: imap.copy("1", "Nowhere"), "COPY to a missing mailbox")
    check("TRYCREATE" in imap.untagged_responses, "COPY to a missing mailbox answers NO [TRYCREATE]",
          imap.untagged_responses)
    imap.untagged_responses.pop("TRYCREATE", None)
    data = ok(imap.status("Keep", "(MESSAGES UNSEEN)"), "STATUS Keep after COPY")
    check(re.search(rb"MESSAGES 2\b", data[0]) and re.search(rb"UNSEEN 0\b", data[0]),
          "COPY brings 2 messages with their flags", data)
    data = ok(imap.select("Work"), "SELECT Work again")
    ok(imap.store("3", "+FLAGS", r"(\Deleted)"), "STORE +FLAGS \\Deleted")
    data = ok(imap.status("Work", "(DELETED)"), "STATUS DELETED")
    check(re.search(rb"DELETED 1\b", data[0]), "STATUS counts the \\Deleted message", data)
    data = ok(imap.expunge(), "EXPUNGE")
    check(data == [b"3"], "EXPUNGE answers * 3 EXPUNGE", data, [b"3"])
    data = ok(imap.fetch("1:*", "(UID)"), "FETCH after EXPUNGE")
    fm = fetch_map(data)
    got = [attr(fm[s][0], "UID") for s in sorted(fm)]
    check(got == [uids[0], uids[1], uids[3]], "sequence numbers close up after EXPUNGE", got)
    data = ok(imap._simple_command("MOVE", "1", "Keep"), "MOVE 1 Keep")
    check(untagged(imap, "EXPUNGE") == [b"1"], "MOVE answers * 1 EXPUNGE", data)
    data = ok(imap.uid("MOVE", str(uids[3]), "Keep"), "UID MOVE")
    check(untagged(imap, "EXPUNGE") == [b"2"], "UID MOVE answers * 2 EXPUNGE", data)
    data = ok(imap.status("Keep", "(MESSAGES)"), "STATUS Keep after MOVE")
    check(re.search(rb"MESSAGES 4\b", data[0]), "Keep holds 4 messages", data)
    data = ok(imap.noop(), "NOOP")
    data = ok(imap.fetch("1:*", "(UID)"), "FETCH after MOVE")
    fm = fetch_map(data)
    check([attr(fm[s][0], "UID") for s in sorted(fm)] == [uids[1]], "one message left in Work", data)
    ok(imap.check(), "CHECK")
    ok(imap.unselect(), "UNSELECT")
    no(imap, lambda: imap.fetch("1", "(UID)"), "FETCH after UNSELECT")

    # --- CLOSE expunges -----------------------------------------------------------------------
    ok(imap.select("Keep"), "SELECT Keep")
    ok(imap.uid("COPY", "1:*", "Keep"), "UID COPY into the selected mailbox")
    data = ok(imap.noop(), "NOOP after COPY into the selected mailbox")
    exists = untagged(imap, "EXISTS")
    check(exists and exists[-1] == b"8", "COPY into the selected mailbox is announced with * 8 EXISTS", exists)
    data = ok(imap.fetch("1:*", "(UID)"), "FETCH after self-COPY")
    check(len(fetch_map(data)) == 8, "self-COPY doubles the mailbox", data)
    ok(imap.store("5:*", "+FLAGS.SILENT", r"(\Deleted)"), "STORE \\Deleted on the copies")
    ok(imap.close(), "CLOSE")
    data = ok(imap.status("Keep", "(MESSAGES)"), "STATUS after CLOSE")
    check(re.search(rb"MESSAGES 4\b", data[0]), "CLOSE expunged the \\Deleted messages", data)

    # --- CONDSTORE (RFC 7162) -----------------------------------------------------------------
    data = ok(imap.select("Keep (CONDSTORE)"), "SELECT Keep (CONDSTORE)")
    hms = untagged(imap, "HIGHESTMODSEQ")
    check(hms and hms[0].isdigit(), "SELECT (CONDSTORE) gives OK [HIGHESTMODSEQ]", hms)
    highest = int(hms[0])
    data = ok(imap.fetch("1:*", "(FLAGS MODSEQ)"), "FETCH MODSEQ")
    fm = fetch_map(data)
    modseqs = {s: attr(fm[s][0], "MODSEQ") for s in fm}
    check(all(m is not None and 0 < m <= highest for m in modseqs.values()),
          "every MODSEQ is positive and at most HIGHESTMODSEQ", (modseqs, highest))
    data = ok(imap.fetch("1:*", f"(FLAGS) (CHANGEDSINCE {highest})"), "FETCH (CHANGEDSINCE highest)")
    check(not fetch_map(data), "nothing changed since HIGHESTMODSEQ", data)
    data = ok(imap.store("2", "+FLAGS", r"(\Answered)"), "STORE under CONDSTORE")
    fm = fetch_map(data)
    new2 = attr(fm[2][0], "MODSEQ") if 2 in fm else None
    check(new2 is not None and new2 > highest, "STORE answers a MODSEQ above the old HIGHESTMODSEQ", data)
    data = ok(imap.fetch("1:*", f"(FLAGS) (CHANGEDSINCE {highest})"), "FETCH (CHANGEDSINCE old highest)")
    fm = fetch_map(data)
    check(sorted(fm) == [2] and attr(fm[2][0], "MODSEQ") == new2,
          "CHANGEDSINCE gives just the changed message, with MODSEQ", data)
    data = ok(imap.store("1,2", f"(UNCHANGEDSINCE {highest}) +FLAGS", r"($Checked)"),
              "STORE (UNCHANGEDSINCE) on a changed and an unchanged message")
    modified = imap.untagged_responses.pop("MODIFIED", None)
    check(modified == [b"2"], "conditional STORE answers OK [MODIFIED 2]", modified, [b"2"])
    data = ok(imap.fetch("1:2", "(FLAGS)"), "FETCH after conditional STORE")
    fm = fetch_map(data)
    check("$Checked" in flags_of(fm[1][0]), "the unchanged message was stored", data)
    check("$Checked" not in flags_of(fm[2][0]), "the changed message was left alone", data)
    # ENABLE is valid only before a mailbox is selected (RFC 5161 3.1): a second session.
    other = imaplib.IMAP4(host, imap_port, timeout=TIMEOUT_SECONDS)
    ok(other.login(user, password), "LOGIN (second session)")
    ok(other.enable("CONDSTORE"), "ENABLE CONDSTORE")
    enabled = untagged(other, "ENABLED")
    check(enabled and b"CONDSTORE" in enabled[0].upper().split(), "ENABLE answers * ENABLED CONDSTORE", enabled)
    ok(other.select("Keep"), "SELECT Keep after ENABLE CONDSTORE")
    hms = untagged(other, "HIGHESTMODSEQ")
    check(hms and hms[0].isdigit() and int(hms[0]) >= new2, "SELECT after ENABLE CONDSTORE gives HIGHESTMODSEQ", hms)
    data = ok(other.fetch("2", "(MODSEQ)"), "FETCH MODSEQ (second session)")
    check(attr(text(data), "MODSEQ") == new2, "both sessions see the same MODSEQ", data, new2)
    typ, data = other.logout()
    check(typ == "BYE", "LOGOUT (second session) answers * BYE", (typ, data))
    data = ok(imap.status("Keep", "(HIGHESTMODSEQ)"), "STATUS HIGHESTMODSEQ")
    now = int(re.search(rb"HIGHESTMODSEQ (\d+)", data[0]).group(1))
    check(now > highest, "HIGHESTMODSEQ grew with the STOREs", (now, highest))
    search("SEARCH MODSEQ", ["MODSEQ", str(highest + 1)], [1, 2])
    data = ok(imap.search(None, "MODSEQ", str(highest + 1)), "SEARCH MODSEQ again")
    m = re.search(rb"\(MODSEQ (\d+)\)$", text(data))
    check(m and int(m.group(1)) == now, "SEARCH MODSEQ ends with (MODSEQ highest of the matches) (RFC 7162 3.1.5)",
          data, f"(MODSEQ {now})")

    # --- IDLE woken by an LMTP delivery -------------------------------------------------------
    data = ok(imap.select("INBOX"), "SELECT INBOX")
    before = int(data[0])
    sock = imap.sock
    sock.settimeout(TIMEOUT_SECONDS)
    imap.send(b"I1 IDLE\r\n")
    line = imap.readline()
    check(line.startswith(b"+"), "IDLE answers a continuation", line)
    delivered = message(5, "Delivered while idling", "Eve <eve@example.org>", "You have mail.")
    with smtplib.LMTP(host, int(lmtp_port), timeout=TIMEOUT_SECONDS) as lmtp:
        code, _ = lmtp.ehlo("imaplib-surface")
        check(code == 250, "LMTP LHLO answers 250", code)
        refused = lmtp.sendmail("eve@example.org", [f"{user}@example.org"], delivered)
        check(refused == {}, "LMTP delivers to the user", refused)
    lines = []
    while True:
        line = imap.readline()
        check(line != b"", "connection stays open during IDLE", lines)
        lines.append(line)
        if re.match(rb"\* \d+ EXISTS", line):
            break
    exists = int(line.split()[1])
    check(exists == before + 1, "IDLE reports * n EXISTS for the delivery", lines)
    imap.send(b"DONE\r\n")
    while True:
        line = imap.readline()
        check(line != b"", "connection stays open after DONE", line)
        if line.startswith(b"I1 "):
            break
    check(line.startswith(b"I1 OK"), "DONE ends IDLE with a tagged OK", line)
    data = ok(imap.fetch(str(exists), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "FETCH the delivered message")
    check(fetch_map(data)[exists][1] == [b"Subject: Delivered while idling\r\n\r\n"],
          "the delivered message is in INBOX", data)

    # --- UIDPLUS (RFC 4315), checked when advertised ------------------------------------------
    if "UIDPLUS" in cap_set:
        data = ok(imap.status("Work", "(UIDNEXT UIDVALIDITY)"), "STATUS Work (UIDNEXT UIDVALIDITY)")
        uidnext = int(re.search(rb"UIDNEXT (\d+)", data[0]).group(1))
        uidv = int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))
        imap.untagged_responses.pop("APPENDUID", None)
        ok(imap.append("Work", None, None, MESSAGES[1]), "APPEND (UIDPLUS)")
        got = imap.untagged_responses.pop("APPENDUID", None)
        check(got == [f"{uidv} {uidnext}".encode()], "APPEND answers OK [APPENDUID uidvalidity uid]", got,
              [f"{uidv} {uidnext}".encode()])
        ok(imap.select("Work"), "SELECT Work (UIDPLUS)")
        ok(imap.uid("COPY", str(uidnext), "Work"), "UID COPY (UIDPLUS)")
        got = imap.untagged_responses.pop("COPYUID", None)
        want = [f"{uidv} {uidnext} {uidnext + 1}".encode()]
        check(got == want, "COPY answers OK [COPYUID uidvalidity source-uids dest-uids]", got, want)
        ok(imap.store("1:*", "+FLAGS.SILENT", r"(\Deleted)"), "STORE \\Deleted on all of Work")
        ok(imap.uid("EXPUNGE", str(uidnext)), "UID EXPUNGE one UID")
        data = ok(imap.uid("SEARCH", None, "ALL"), "UID SEARCH ALL after UID EXPUNGE")
        left = search_ids(data)
        check(left == [uids[1], uidnext + 1], "UID EXPUNGE removed only the UID given", left, [uids[1], uidnext + 1])
        ok(imap.close(), "CLOSE Work (UIDPLUS)")

    # --- LOGOUT -------------------------------------------------------------------------------
    typ, data = imap.logout()
    check(typ == "BYE", "LOGOUT answers * BYE", (typ, data))


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    host, imap_port, lmtp_port, user, password = sys.argv[1:]
    try:
        run(host, int(imap_port), int(lmtp_port), user, password)
    except Exception:  # anything that stops the run is a failure, with where it happened
        FAILURES.append(f"aborted after check {CHECKS}:\n{traceback.format_exc()}")
    if FAILURES:
        print(f"imaplib_surface: {len(FAILURES)} of {CHECKS} checks FAILED:", file=sys.stderr)
        for failure in FAILURES:
            print(f"  {failure}", file=sys.stderr)
        return 1
    print(f"imaplib_surface: all {CHECKS} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
