"""Transport-neutral security: who is calling (TLS peers, JWTs, API keys) and what each role may call.

=================  ====================================================================
module             what it holds
=================  ====================================================================
``identity``       :class:`Role`, :class:`Identity`, the two auth errors, peer certificates
``credentials``    JWT (JWKS file or URL), hashed API keys, mTLS identities -> an Identity
``roles``          the one table: RPC -> role, customer binding and surface restrictions
``guard``          :class:`Guard`: authenticate + authorize one call (any transport)
``grpc_guard``     the gRPC adapter: a server interceptor running the guard before handlers
``tls``            server certificates, swapped on reload without a restart or dropped calls
``reload``         reload certificates and credential files on SIGHUP or when they change
``audit``          the structured audit record of admin and privacy calls
=================  ====================================================================

Every transport (gRPC here; HTTP surfaces the same way) hands the guard the
request headers, the verified peer certificate (if any), the RPC's full name
and the parsed request, and maps its two errors to its own status codes.
"""
