"""The same pipeline behind a minimal FastAPI + uvicorn server: the yardstick the engine's
own server is measured against (`python -m benchmarks.compare`), not a product.

POST /api/predict with the multipart field `file`: the upload is saved to a temporary file,
its type sniffed and its header checked by the engine's upload rule, then ModelHub's Python
API predicts on it, as the engine does. No limits, drain or metrics: only the work.
Serves on HOST:PORT (127.0.0.1:8080 by default) until stopped.
"""

from __future__ import annotations

import os
import tempfile

import uvicorn
from fastapi import FastAPI, UploadFile
from fastapi.responses import JSONResponse

from benchmarks.harness import CONTRIB_DIR
from inference import Model
from modelhubapi import ModelHubAPI
from modelhubapi.safety import files
from modelhubapi.safety.errors import InputError

api = ModelHubAPI(Model(), CONTRIB_DIR)
app = FastAPI()


@app.post("/api/predict")
def predict(file: UploadFile) -> JSONResponse:
    """A plain `def`: FastAPI runs it in its thread pool, as the model is not async."""
    accepted = api.accepted_formats(api.get_config())
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "input")
        with open(path, "wb") as target:
            while chunk := file.file.read(1024 * 1024):
                target.write(chunk)
        try:
            mime = files.check_input_file(path, accepted)
        except InputError as error:
            return JSONResponse({"error": error.message}, error.status)
        named = path + files.file_suffix(mime)
        os.replace(path, named)
        return JSONResponse(api.predict(named))


if __name__ == "__main__":
    host = os.environ.get("HOST", "127.0.0.1")
    uvicorn.run(app, host=host, port=int(os.environ.get("PORT", "8080")), log_level="warning")
