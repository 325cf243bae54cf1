"""medsr in a hospital: DICOMweb in and out (QIDO-RS, WADO-RS, STOW-RS) for `medsr pacs`.

```python
from medsr.pacs import PacsOptions, Selection, connect, load_credentials, run_pacs
client = connect("https://pacs.example.org/dicom-web", load_credentials())
run_pacs(client, Selection(modality="CT", date="20240101-"), PacsOptions(model="ct-ldct"))
```

An application: it uses inference, io and the image type; nothing below imports it. Derived
series are for research use only and say so in their headers.
"""

from __future__ import annotations

from medsr.pacs.connection import Credentials, TlsOptions, connect, load_credentials
from medsr.pacs.query import Selection, SeriesRef, find_series
from medsr.pacs.run import Counts, PacsOptions, list_series, run_pacs, summary
from medsr.pacs.state import State

__all__ = [
    "Counts",
    "Credentials",
    "PacsOptions",
    "Selection",
    "SeriesRef",
    "State",
    "TlsOptions",
    "connect",
    "find_series",
    "list_series",
    "load_credentials",
    "run_pacs",
    "summary",
]
