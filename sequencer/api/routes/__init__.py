"""The API's routes, one module per resource; `routers` holds their routers in the order the
OpenAPI document lists them (each is included in the app itself: a level of routing less per
request than one router holding them all)."""

from fastapi import APIRouter

from sequencer.api.routes import (
    accounts,
    batches,
    fills,
    markets,
    ops,
    orders,
    risk,
    status,
    stream,
    transactions,
)

routers: tuple[APIRouter, ...] = tuple(
    module.router
    for module in (transactions, accounts, batches, status, risk, stream, orders, fills, markets, ops)
)
