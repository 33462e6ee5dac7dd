"""Puts the RateLimit-Policy / RateLimit fields of the request's decisions on its response."""

from llmapp.middleware import _HybridMiddleware
from tenants.ratelimit.headers import close_request_fields, holder_fields, open_request_fields


class RateLimitHeadersMiddleware(_HybridMiddleware):
    """Opens a per-request holder that every rate-limit decision made while serving the request
    writes its fields into (the DRF throttle, a chat turn's reservation), and copies them onto
    the response, admitted or refused. Runs natively sync and async."""

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        holder, token = open_request_fields()
        try:
            response = self.get_response(request)
        finally:
            close_request_fields(token)
        return self._apply(holder, response)

    async def _acall(self, request):
        holder, token = open_request_fields()
        try:
            response = await self.get_response(request)
        finally:
            close_request_fields(token)
        return self._apply(holder, response)

    @staticmethod
    def _apply(holder: dict, response):
        for name, value in holder_fields(holder).items():
            response[name] = value
        return response
