"""SQL Server (and other ODBC) source: scheduled incremental pulls through pyodbc.

pyodbc is imported inside functions only, so `import hub` works on machines without libodbc.
"""
