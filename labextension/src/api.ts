import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** A reproduction as GET /qkit/papers describes it. */
export interface IPaper {
  name: string;
  label: string;
  title: string;
  params: Record<string, { type: string; default: string; help: string }>;
}

/** One claim or sanity check of a run, with its verdict. */
export interface IClaim {
  id: string;
  statement: string;
  verdict: 'holds' | 'does not hold' | 'inconclusive';
  kind: 'claim' | 'sanity';
  evidence: string;
}

/** The latest run of a paper in the runs folder. */
export interface IRun {
  folder: string;
  status: string;
  started: string | null;
  ended: string | null;
  elapsed_s: number | null;
  claims: IClaim[];
  sanity: IClaim[];
  notebook: string | null;
  html: string | null;
  error: string | null;
}

/** A reproduction the server is running (or ran) for the panel. */
export interface IJob {
  paper: string;
  runs: string;
  state: 'running' | 'finished' | 'failed';
  elapsed_s: number;
  progress: { done: number; total: number } | null;
  output: string[];
  error: string | null;
}

export interface IPaperRuns {
  name: string;
  label: string;
  title: string;
  latest: IRun | null;
  job: IJob | null;
}

export interface IRunsReply {
  runs: string;
  papers: IPaperRuns[];
}

/** Call the qkit server extension; a refused request throws an Error carrying the server's message. */
export async function requestAPI<T>(endPoint: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'qkit', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = text;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    // not JSON: keep the text for the message below
  }
  if (!response.ok) {
    const message = (data && data.message) || text || response.statusText;
    throw new Error(`${response.status}: ${message}`);
  }
  return data as T;
}

/** POST a JSON body. */
export function postAPI<T>(endPoint: string, body: unknown): Promise<T> {
  return requestAPI<T>(endPoint, { method: 'POST', body: JSON.stringify(body) });
}

/** The URL of a file under the server root, served raw (for the HTML of a run). */
export function fileURL(path: string): string {
  const settings = ServerConnection.makeSettings();
  return URLExt.join(settings.baseUrl, 'files', URLExt.encodeParts(path));
}
