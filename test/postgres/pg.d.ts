// The part of node-postgres (`pg`, plain JS without bundled types; @types/pg is not a dependency)
// that the live PostgreSQL test drives.
declare module 'pg' {
  export interface ClientConfig {
    host?: string;
    port?: number;
    user?: string;
    password?: string;
    database?: string;
    application_name?: string;
  }
  export interface QueryConfig {
    text: string;
    name?: string;
    values?: unknown[];
  }
  export interface QueryResult {
    command: string;
    rowCount: number | null;
    rows: Record<string, unknown>[];
  }
  export class Client {
    constructor(config?: ClientConfig);
    connect(): Promise<void>;
    query(query: string | QueryConfig, values?: unknown[]): Promise<QueryResult>;
    end(): Promise<void>;
  }
  const pg: { Client: typeof Client };
  export default pg;
}
