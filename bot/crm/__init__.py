"""The CRM: records, tables, the repository, its async façade and the demo seed."""
