#!/usr/bin/env python3
"""Writes the ingestion fixtures in crates/ingest-worker/tests/fixtures/.

Only the Python standard library: the PDFs are written by hand (uncompressed content streams,
the standard Helvetica fonts, a computed cross-reference table), the DOCX and the XLSX with
zipfile. Output is byte-for-byte reproducible (fixed ZIP timestamps, no PDF dates), so running
it again leaves `git status` clean.

    python3 scripts/make-fixtures.py
"""

import pathlib
import zipfile

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/ingest-worker/tests/fixtures"

# ---------------------------------------------------------------------------- PDF

HANDBOOK_PAGES = [
    [
        ("h", "Annual leave"),
        ("p", [
            "Every employee accrues 25 days of paid annual leave per calendar",
            "year, credited monthly in arrears. Part-time staff accrue leave in",
            "proportion to their contracted hours.",
        ]),
        ("p", [
            "Leave is requested in the HR portal at least two weeks ahead. Your",
            "manager approves or declines within five working days; silence is",
            "not approval.",
        ]),
        ("words", ["Public", "holidays", "are", "not", "deducted", "from", "annual", "leave."]),
    ],
    [
        ("h", "Carry-over"),
        ("p", [
            "Up to five unused days carry over to the next year and must be taken",
            "by 31 March. Days above five lapse unless HR agreed an exception in",
            "writing, for example after long sick leave or parental leave.",
        ]),
        ("p", [
            "Unused days are never paid out while you are employed; on leaving,",
            "the balance is settled with the final salary.",
        ]),
    ],
    [
        ("h", "Travel and expenses"),
        ("p", [
            "Book trains and flights through the travel desk. Economy class is the",
            "rule for trips under six hours. Hotels up to 150 EUR a night need no",
            "approval; above that, ask your manager before booking.",
        ]),
        ("p", [
            "Submit receipts within 30 days. The reimburse-",
            "ment is paid with the next monthly salary, in euros, at the exchange",
            "rate of the day of the expense.",
        ]),
    ],
    [
        ("h", "Remote work"),
        ("p", [
            "You may work remotely up to three days a week after the probation",
            "period. Security rules apply everywhere: lock your screen, use the",
            "VPN, and never print confidential documents at home.",
        ]),
    ],
]

HEADER = "Acme Employee Handbook 2026"
FOOTER_LEFT = "Confidential"


def pdf_string(text):
    data = text.encode("cp1252")
    return b"(" + data.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def text_at(font, size, x, y, text):
    return b"BT /%s %d Tf %d %d Td %s Tj ET\n" % (font.encode(), size, x, y, pdf_string(text))


def handbook_page(number, total, blocks):
    out = bytearray()
    # Footer first, as some exporters draw it: extraction order is not top to bottom.
    out += text_at("F1", 9, 72, 40, FOOTER_LEFT)
    out += text_at("F1", 9, 460, 40, "Page %d of %d" % (number, total))
    out += text_at("F1", 9, 72, 750, HEADER)
    y = 700
    for kind, value in blocks:
        if kind == "h":
            out += text_at("F2", 14, 72, y, value)
            y -= 28
        elif kind == "p":
            for line in value:
                out += text_at("F1", 11, 72, y, line)
                y -= 14
            y -= 12
        elif kind == "words":
            # Each word drawn on its own, no space characters: spacing comes from positions
            # (as Word's PDF export often writes text).
            x = 72
            for word in value:
                out += text_at("F1", 11, x, y, word)
                x += int(len(word) * 5.6) + 4
            y -= 26
    return bytes(out)


def write_pdf(objects):
    """objects: list of bytes bodies; object i+1 is objects[i]. Object 1 is the catalog."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def stream(content):
    return b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"


def handbook_pdf():
    total = len(HANDBOOK_PAGES)
    # 1 catalog, 2 pages, 3 and 4 fonts, then (page, content) pairs.
    page_ids = [5 + 2 * i for i in range(total)]
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d /MediaBox [0 0 612 792] >>"
        % (b" ".join(b"%d 0 R" % i for i in page_ids), total),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    for number, blocks in enumerate(HANDBOOK_PAGES, start=1):
        content_id = 5 + 2 * (number - 1) + 1
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> >>" % content_id
        )
        objects.append(stream(handbook_page(number, total, blocks)))
    return write_pdf(objects)


def scanned_pdf():
    """One page holding only an image (a 2x2 grey bitmap): no text layer."""
    image = b"<< /Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray " \
            b"/BitsPerComponent 8 /Length 4 >>\nstream\n\x10\x80\x80\x10\nendstream"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 612 792] >>",
        b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Resources << /XObject << /Im1 5 0 R >> >> >>",
        stream(b"q 612 0 0 792 0 0 cm /Im1 Do Q\n"),
        image,
    ]
    return write_pdf(objects)


def corrupt_pdf(good):
    """The start of a real PDF, cut off in its first page's content, without xref or trailer."""
    return good[: len(good) // 3]


# ---------------------------------------------------------------------------- ZIP (DOCX, XLSX)

FIXED_TIME = (2026, 1, 15, 9, 30, 0)


def write_zip(path, parts):
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in parts:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, text)


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def w_para(text, style=None, numbered=False, runs=None):
    props = ""
    if style or numbered:
        props = "<w:pPr>"
        if style:
            props += '<w:pStyle w:val="%s"/>' % style
        if numbered:
            props += '<w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr>'
        props += "</w:pPr>"
    if runs is None:
        runs = ['<w:r><w:t xml:space="preserve">%s</w:t></w:r>' % text]
    return "<w:p>%s%s</w:p>" % (props, "".join(runs))


def w_table(rows):
    out = "<w:tbl><w:tblPr><w:tblStyle w:val=\"TableGrid\"/></w:tblPr>"
    for row in rows:
        out += "<w:tr>" + "".join(
            "<w:tc><w:p><w:r><w:t>%s</w:t></w:r></w:p></w:tc>" % cell for cell in row
        ) + "</w:tr>"
    return out + "</w:tbl>"


def security_docx():
    body = "".join([
        w_para("Information Security Policy", style="Title"),
        w_para("This policy applies to every employee, contractor and system at Acme."),
        w_para("Passwords", style="Heading1"),
        w_para("Passwords protect company accounts. They must:"),
        w_para("be at least 14 characters long;", style="ListParagraph", numbered=True),
        w_para("never be reused across systems;", style="ListParagraph", numbered=True),
        w_para("be stored only in the company password manager.", style="ListParagraph", numbered=True),
        w_para("", runs=[
            '<w:r><w:t xml:space="preserve">Multi-factor authentication is </w:t></w:r>',
            '<w:r><w:rPr><w:b/></w:rPr><w:t>mandatory</w:t></w:r>',
            '<w:del w:id="1" w:author="Legal"><w:r><w:delText>optional</w:delText></w:r></w:del>',
            '<w:r><w:t xml:space="preserve"> for e-mail and the VPN.</w:t></w:r>',
        ]),
        w_para("Incident response times", style="Heading2"),
        w_para("Report suspected incidents to security@acme.example. Targets by severity:"),
        w_table([
            ["Severity", "First response", "Resolution target"],
            ["Critical", "15 minutes", "4 hours"],
            ["High", "1 hour", "1 business day"],
            ["Low", "1 business day", "2 weeks"],
        ]),
        w_para("Laptops", style="Heading1"),
        w_para("Laptops use full-disk encryption and lock after five minutes idle."),
        '<w:sectPr><w:pgSz w:w="12240" w:h="15840"/></w:sectPr>',
    ])
    document = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' \
               '<w:document %s><w:body>%s</w:body></w:document>' % (W, body)
    styles = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:styles %s>' % W + "".join(
        '<w:style w:type="paragraph" w:styleId="%s"><w:name w:val="%s"/></w:style>' % pair
        for pair in [("Normal", "Normal"), ("Title", "Title"), ("Heading1", "heading 1"),
                     ("Heading2", "heading 2"), ("ListParagraph", "List Paragraph")]
    ) + "</w:styles>"
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.wordprocessingml.document.main+xml"/>'
        '<Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.wordprocessingml.styles+xml"/>'
        '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-'
        'package.core-properties+xml"/>'
        "</Types>"
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="word/document.xml"/>'
        "</Relationships>"
    )
    core = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
        'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        "<dc:title>Microsoft Word - secpol_v3_FINAL.docx</dc:title></cp:coreProperties>"
    )
    return [
        ("[Content_Types].xml", content_types),
        ("_rels/.rels", rels),
        ("docProps/core.xml", core),
        ("word/document.xml", document),
        ("word/styles.xml", styles),
    ]


def budget_xlsx():
    return [
        ("[Content_Types].xml",
         '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
         'package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>'),
        ("xl/workbook.xml",
         '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
         'spreadsheetml/2006/main"><sheets><sheet name="Budget" sheetId="1"/></sheets></workbook>'),
        ("xl/worksheets/sheet1.xml",
         '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
         'spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Travel</t>'
         '</is></c><c r="B1"><v>12000</v></c></row></sheetData></worksheet>'),
    ]


# ---------------------------------------------------------------------------- text formats

WIKI_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>VPN setup - Acme Wiki</title>
  <style>body { font-family: sans-serif } .nav a { color: #06c }</style>
  <script>window.analytics = { track: function () {} }; analytics.track("pageview");</script>
</head>
<body>
  <header class="site-header"><a href="/">Acme Wiki</a> <form><input name="q" placeholder="Search the wiki"></form></header>
  <nav class="nav"><ul><li><a href="/it">IT</a></li><li><a href="/hr">HR</a></li><li><a href="/recent">Recent changes</a></li></ul></nav>
  <div class="layout">
    <aside class="sidebar">Page tools: Edit | History | Watch</aside>
    <main>
      <h1>VPN setup</h1>
      <p>The VPN connects your laptop to the office network. Install the <b>Acme Connect</b>
         client from the self-service portal; it is preinstalled on new laptops.</p>
      <h2>First connection</h2>
      <ol>
        <li>Open Acme Connect and enter <code>vpn.acme.example</code> as the server.</li>
        <li>Sign in with your e-mail address and approve the push notification.</li>
        <li>Wait for the green shield in the menu bar.</li>
      </ol>
      <h2>Troubleshooting</h2>
      <p>If the connection drops every few minutes, switch the protocol to TCP in
         Settings &rarr; Advanced. Still stuck? Open a ticket with the IT service desk.</p>
      <table>
        <tr><th>Error</th><th>Meaning</th></tr>
        <tr><td>E401</td><td>Your password expired</td></tr>
        <tr><td>E503</td><td>The gateway is under maintenance</td></tr>
      </table>
    </main>
  </div>
  <footer>&copy; 2026 Acme Corp &middot; Privacy &middot; Terms</footer>
  <script src="/static/wiki.js"></script>
</body>
</html>
"""

RUNBOOK_MD = """# Database failover runbook

Use this runbook when the primary PostgreSQL node is down or unreachable for more than
two minutes. The on-call engineer owns the failover; page the database team if unsure.

## Check

1. Confirm the alert in Grafana: `pg_up == 0` on the primary for 2+ minutes.
2. Check replication lag on the standby:

```sql
SELECT now() - pg_last_xact_replay_timestamp() AS lag;
```

* Lag under 30 seconds: go on with the failover.
* Lag above 30 seconds: escalate to the database team first.

## Promote the standby

Run `patronictl failover --candidate db-2` from the bastion host, then confirm
that `db-2` reports `role: primary`.

## Afterwards

- Update the status page.
- Open a post-incident review within two business days.
"""

NOTES_TXT = """Onboarding checklist for new engineers
======================================

Welcome to Acme! Before your first day your manager orders
your laptop and creates your accounts. On day one:

  * collect your badge at reception (bring an ID),
  * sign the security policy in the HR portal,
  * join the #engineering and #announcements channels.

During the first week you pair with your onboarding buddy on
a small production change, so that you see the whole review
and deployment process end to end.
"""

# A report printed to text (as pdftotext writes it): pages separated by form feeds, each
# with the same running header and a page number at the bottom.
MINUTES_TXT = "\f".join([
    """ACME CORP - STEERING COMMITTEE MINUTES

Attendees: A. Chen, R. Okafor, M. Silva.

The committee approved the 2026 training budget of 40,000 EUR,
split evenly between engineering and sales. The hiring freeze
ends on 1 March.

1
""",
    """ACME CORP - STEERING COMMITTEE MINUTES

The office move to the Harbour building is delayed to June
because the landlord has not finished the fire-safety works.

2
""",
    """ACME CORP - STEERING COMMITTEE MINUTES

Next meeting: 12 February, 10:00, room Atlas.

3
""",
])


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    handbook = handbook_pdf()
    (OUT / "handbook.pdf").write_bytes(handbook)
    (OUT / "scanned.pdf").write_bytes(scanned_pdf())
    (OUT / "corrupt.pdf").write_bytes(corrupt_pdf(handbook))
    write_zip(OUT / "security-policy.docx", security_docx())
    write_zip(OUT / "budget.xlsx", budget_xlsx())
    (OUT / "vpn-wiki.html").write_text(WIKI_HTML)
    (OUT / "db-failover.md").write_text(RUNBOOK_MD)
    (OUT / "onboarding.txt").write_text(NOTES_TXT)
    (OUT / "minutes.txt").write_text(MINUTES_TXT)
    for path in sorted(OUT.iterdir()):
        print("%6d  %s" % (path.stat().st_size, path.relative_to(OUT.parent.parent.parent.parent)))


if __name__ == "__main__":
    main()
