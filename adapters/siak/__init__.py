"""SIAK connector: the hub's own JSON contract for delivering LAMPID events to SIAK.

- `mapping`: canonical records -> SIAK wire format (the only module that knows it)
- `client`: `SiakDeliverer`, OAuth2 client credentials over httpx2
- `simulator`: a sandbox SIAK (Starlette) for tests, demos and load runs
"""
