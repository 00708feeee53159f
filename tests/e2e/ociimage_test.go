package e2e

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// ociImage is one image of an OCI archive built by writeOCIArchive.
type ociImage struct {
	name       string   // full reference, e.g. localhost/e2e-pause:latest
	entrypoint []string // image config Entrypoint
	cmd        []string // image config Cmd
}

// ociBlob is a content-addressed blob of the archive.
type ociBlob struct {
	mediaType string
	data      []byte
}

func (b ociBlob) digest() string {
	sum := sha256.Sum256(b.data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (b ociBlob) descriptor() map[string]any {
	return map[string]any{"mediaType": b.mediaType, "digest": b.digest(), "size": len(b.data)}
}

// writeOCIArchive writes an OCI image layout tarball (what `ctr images
// import` reads) holding images that all share one uncompressed layer,
// layerTar (e.g. buildRootfsTar's busybox rootfs). No registry is involved.
func writeOCIArchive(t *testing.T, dir, layerTar string, images []ociImage) string {
	t.Helper()
	layerData, err := os.ReadFile(layerTar)
	if err != nil {
		t.Fatal(err)
	}
	layer := ociBlob{"application/vnd.oci.image.layer.v1.tar", layerData}
	blobs := []ociBlob{layer}
	var manifests []any
	for _, img := range images {
		cfg := map[string]any{
			"architecture": runtime.GOARCH,
			"os":           "linux",
			"created":      time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339),
			"config": map[string]any{
				"Env":        []string{"PATH=/bin"},
				"Entrypoint": img.entrypoint,
				"Cmd":        img.cmd,
				"WorkingDir": "/",
			},
			"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layer.digest()}},
		}
		cfgBlob := ociBlob{"application/vnd.oci.image.config.v1+json", mustJSON(t, cfg)}
		manifest := map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.manifest.v1+json",
			"config":        cfgBlob.descriptor(),
			"layers":        []any{layer.descriptor()},
		}
		manBlob := ociBlob{"application/vnd.oci.image.manifest.v1+json", mustJSON(t, manifest)}
		blobs = append(blobs, cfgBlob, manBlob)
		desc := manBlob.descriptor()
		desc["platform"] = map[string]string{"architecture": runtime.GOARCH, "os": "linux"}
		desc["annotations"] = map[string]string{"io.containerd.image.name": img.name}
		manifests = append(manifests, desc)
	}
	index := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     manifests,
	}

	path := filepath.Join(dir, "images.oci.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, data []byte) {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg,
			ModTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	seen := map[string]bool{}
	for _, b := range blobs {
		d := b.digest()
		if seen[d] {
			continue
		}
		seen[d] = true
		add("blobs/sha256/"+d[len("sha256:"):], b.data)
	}
	add("index.json", mustJSON(t, index))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
