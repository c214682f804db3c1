# The Clarion server (API + merger). Build from the repository root:
#   docker build -t clarion .
FROM python:3.12-slim AS build
WORKDIR /src
COPY edge_agent/ edge_agent/
COPY pyproject.toml README.md ./
COPY src/ src/
COPY cypher/ cypher/
COPY graphql/ graphql/
RUN pip wheel --no-cache-dir --wheel-dir /wheels ./edge_agent .

FROM python:3.12-slim
RUN useradd --system --home /var/lib/clarion --create-home clarion
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER clarion
WORKDIR /var/lib/clarion
ENV CLARION_DATA_DIR=/var/lib/clarion/data CLARION_HOST=0.0.0.0 CLARION_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
ENTRYPOINT ["clarion"]
CMD ["serve"]
