"""``arbiter.v1.AdminService`` until it is built: every RPC answers UNIMPLEMENTED, after the guard.

It is registered so that operators' calls are authenticated, authorised and
audit-logged like every other call already; the implementation replaces
this module.
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc

from arbiter.v1 import admin_pb2, admin_pb2_grpc

__all__ = ["AdminService"]


class AdminService(admin_pb2_grpc.AdminServiceServicer):  # type: ignore[misc]
    """Every method aborts with UNIMPLEMENTED naming itself (no traceback in the log)."""


def _unimplemented(name: str) -> Any:
    async def method(self: AdminService, request: Any, context: Any) -> NoReturn:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, f"AdminService.{name} is not implemented yet"
        )
        raise AssertionError("unreachable: abort raises")

    method.__name__ = name
    return method


for _method in admin_pb2.DESCRIPTOR.services_by_name["AdminService"].methods:
    setattr(AdminService, _method.name, _unimplemented(_method.name))
