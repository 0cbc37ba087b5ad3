"""The server's entry: ``workbench app`` runs this file, which serves ``main.py`` as an st.App
behind :class:`workbench.inspect.access.AccessGuard` (token, Host header, Origin).

The token comes from $WORKBENCH_APP_TOKEN and is taken out of the environment here, so the jobs
the app starts never see it.
"""

import os

import streamlit as st
from starlette.middleware import Middleware

from workbench.inspect.access import HOST_ENV, TOKEN_ENV, AccessGuard

TOKEN = os.environ.pop(TOKEN_ENV, "")
if not TOKEN:
    raise SystemExit("app/serve.py: start the app with `workbench app`, which sets its token")

app = st.App(
    "main.py",
    middleware=[Middleware(AccessGuard, token=TOKEN, bind=os.environ.get(HOST_ENV, "127.0.0.1"))],
)
