// Preload for the MCP conformance CLI, which has no option for request
// headers: adds "Authorization: Bearer $MCP_CONFORMANCE_BEARER" to every
// request it makes (global fetch and undici.request, and raw node:http), so
// the fixtures are exercised through our real authentication.
import { createRequire } from 'node:module';
import http from 'node:http';

const token = process.env.MCP_CONFORMANCE_BEARER;
if (token) {
  const value = `Bearer ${token}`;
  const hasAuth = (name) => String(name).toLowerCase() === 'authorization';
  const withAuth = (headers) => {
    if (headers == null) return { authorization: value };
    if (Array.isArray(headers)) {
      if (headers.length && Array.isArray(headers[0])) {
        return headers.some(([k]) => hasAuth(k)) ? headers : [...headers, ['authorization', value]];
      }
      for (let i = 0; i < headers.length; i += 2) if (hasAuth(headers[i])) return headers;
      return [...headers, 'authorization', value];
    }
    if (typeof headers[Symbol.iterator] === 'function') return withAuth([...headers]);
    return Object.keys(headers).some(hasAuth) ? headers : { ...headers, authorization: value };
  };
  const base = `${process.env.CONFORMANCE_DIR || process.cwd()}/`;
  const { Agent, setGlobalDispatcher } = createRequire(`${base}noop.js`)('undici');
  setGlobalDispatcher(new Agent().compose((dispatch) => (opts, handler) => dispatch({ ...opts, headers: withAuth(opts.headers) }, handler)));
  const request = http.request;
  http.request = function (...args) {
    const i = args.findIndex((a) => a && typeof a === 'object' && !(a instanceof URL));
    if (i >= 0) args[i] = { ...args[i], headers: withAuth(args[i].headers) };
    else args.splice(typeof args[0] === 'function' ? 0 : 1, 0, { headers: { authorization: value } });
    return request.apply(this, args);
  };
}
