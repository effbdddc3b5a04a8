"""Loaded by Python at start-up when this folder is on PYTHONPATH: every https:// request made
through urllib goes to the loopback stand-in for GitHub at $GITHUB_STANDIN instead, as
http://STANDIN/<host>/<path>. ModelHub's start.py reaches GitHub through urllib alone (the
model index, the contents API, raw files), so it runs unmodified and offline."""

import os
import urllib.request


class _ToLoopback(urllib.request.BaseHandler):
    handler_order = 100  # before urllib's own HTTPS handler

    def https_open(self, request):
        url = f"{os.environ['GITHUB_STANDIN']}/{request.host}{request.selector}"
        return self.parent.open(url, timeout=30)


if os.environ.get("GITHUB_STANDIN"):
    urllib.request.install_opener(urllib.request.build_opener(_ToLoopback))
