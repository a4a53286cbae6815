import { createServer } from 'node:http';
import { closeServer, listen, sendMetrics, urlHost } from './public-api.js';
import type { Metrics } from '../metrics.js';

/**
 * `GET /metrics` on its own listener, loopback by default: what the cloud refused and why is for
 * its operators' Prometheus, not for anyone who can reach the pairing API.
 */
export interface MetricsEndpoint {
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startMetricsEndpoint(metrics: Metrics, host: string, port: number): Promise<MetricsEndpoint> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') return sendMetrics(res, metrics);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
  });
  const bound = await listen(server, host, port);
  return { port: bound, url: `http://${urlHost(host)}:${bound}/metrics`, close: () => closeServer(server) };
}
