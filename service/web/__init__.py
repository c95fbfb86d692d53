"""The pages a person sees: buy, checkout (QR, WebLN, live status) and history. Served by Flask with
no build step; the pages talk to the JSON API in service/api."""

from __future__ import annotations

from flask import Blueprint, render_template

from service.api.orders import load_order

blueprint = Blueprint("web", __name__, template_folder="templates", static_folder="static",
                      static_url_path="/static/web")


@blueprint.get("/")
def buy():  # type: ignore[no-untyped-def]
    return render_template("buy.html")


@blueprint.get("/checkout/<order_id>")
def checkout(order_id: str):  # type: ignore[no-untyped-def]
    return render_template("checkout.html", order=load_order(order_id))


@blueprint.get("/history")
def history():  # type: ignore[no-untyped-def]
    return render_template("history.html")
