"""The hub's pages in a real browser (Debian chromium driven by Playwright).

Run by node/tests/browser.rs against a hub it started:
    python pages.py HUB_URL CHROMIUM_PATH

Users: `alice` gets a tiny server that is ready after a short delay; `broken` gets a
command that prints HTML-looking text and exits, to show the failure on the page.
Exits non-zero (with the failed expectation) when something does not hold.
"""

import json
import re
import sys

from playwright.sync_api import expect, sync_playwright

URL, CHROMIUM = sys.argv[1], sys.argv[2]


def login(page, name, password="pw", next_path=None):
    target = f"{URL}/hub/login" + (f"?next={next_path}" if next_path else "")
    page.goto(target)
    expect(page).to_have_title(re.compile("Sign in"))
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")


def main():
    alerts = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))

        # a wrong password shows the message on the form, escaped
        login(page, "<b>alice</b>", password="wrong")
        expect(page.locator("#login-error")).to_contain_text("Invalid username")
        assert page.locator("#login-form b").count() == 0, "user input rendered as HTML"

        # log in with next=/user/alice/whoami: spawn, the pending page follows progress
        # over the event stream, then goes on to the server by itself
        login(page, "alice", next_path="/hub/spawn%3Fnext%3D%252Fuser%252Falice%252Fwhoami")
        page.wait_for_url(re.compile(r"/hub/spawn-pending/alice"))
        expect(page.locator("#progress-log li").first).to_be_visible(timeout=10_000)
        page.wait_for_url(re.compile(r"/user/alice/whoami"), timeout=30_000)
        who = json.loads(page.locator("body").inner_text())
        assert who["user"] == "alice", who

        # home: the server runs; stop it with the page's own button (an API call with
        # the XSRF token), and the page comes back with a start link
        page.goto(f"{URL}/hub/home")
        expect(page.locator("#stop")).to_be_visible()
        page.click("#stop")
        expect(page.locator("#start")).to_have_text("Start My Server", timeout=20_000)

        # a stopped server: the hub's "not running" page offers to start it
        page.goto(f"{URL}/user/alice/tree")
        expect(page.locator("#not-running")).to_be_visible()
        page.click("#start")
        page.wait_for_url(re.compile(r"/user/alice/tree"), timeout=30_000)

        # logout ends the session
        page.goto(f"{URL}/hub/logout")
        page.wait_for_url(re.compile(r"/hub/login"))
        page.goto(f"{URL}/hub/home")
        page.wait_for_url(re.compile(r"/hub/login\?next="))

        # a failing spawn: the pending page shows the server's last lines, as text
        login(page, "broken")
        page.wait_for_url(re.compile(r"/hub/spawn-pending/broken"))
        failed = page.locator("#failed-message").filter(has_text="cannot start")
        expect(failed.first).to_be_visible(timeout=20_000)
        expect(failed.first).to_contain_text("<img src=x onerror=alert(1)>")
        assert page.locator("#spawn-pending img").count() == 0, "log text rendered as HTML"
        page.click("#try-again >> visible=true")
        page.wait_for_url(re.compile(r"/hub/spawn-pending/broken"))

        browser.close()
    assert not alerts, f"script ran from user-controlled text: {alerts}"
    print("pages: ok")


if __name__ == "__main__":
    main()
