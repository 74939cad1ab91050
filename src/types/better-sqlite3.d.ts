// The part of better-sqlite3's API hybrid uses (the package ships no types, and @types/better-sqlite3 is not a
// dependency): opening a database read-only, a statement's rows, and the online backup.
declare module 'better-sqlite3' {
  interface Statement {
    get(...params: unknown[]): unknown
    all(...params: unknown[]): unknown[]
    run(...params: unknown[]): {changes: number}
  }
  interface BackupProgress {
    totalPages: number
    remainingPages: number
  }
  interface Options {
    readonly?: boolean
    fileMustExist?: boolean
    timeout?: number
  }
  class Database {
    constructor(file: string, options?: Options)
    prepare(sql: string): Statement
    pragma(sql: string, options?: {simple?: boolean}): unknown
    exec(sql: string): this
    /** SQLite's online backup API: a consistent copy of the database (its WAL included) while others write. */
    backup(destination: string, options?: {progress?: (info: BackupProgress) => number}): Promise<BackupProgress>
    close(): void
  }
  export default Database
}
