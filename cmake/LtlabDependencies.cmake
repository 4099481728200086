# Every dependency comes from Debian 12 packages (tools/install-deps.sh).

find_package(Eigen3 3.4 REQUIRED NO_MODULE)
# Serial HDF5 through CMake's module: pkg-config points at the MPI build once VTK is installed.
set(HDF5_PREFER_PARALLEL OFF)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
# libzip reads PyTorch's zip checkpoints (core, no libtorch).
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBZIP REQUIRED IMPORTED_TARGET libzip>=1.7)

# OpenBLAS, OpenMP flavour, linked by full path with an RPATH to its folder:
# Debian's libblas.so.3 alternative may point at the reference BLAS (20x
# slower) or the pthread OpenBLAS, whose thread pool would oversubscribe the
# cores against our OpenMP loops. The OpenMP build shares libgomp's pool.
set(LTLAB_OPENBLAS_HINTS
    /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp
    /usr/lib/x86_64-linux-gnu/openblas-openmp)
find_library(LTLAB_OPENBLAS_LIBRARY NAMES openblas libopenblas.so.0
             HINTS ${LTLAB_OPENBLAS_HINTS} NO_DEFAULT_PATH)
find_path(LTLAB_OPENBLAS_INCLUDE_DIR cblas.h
          HINTS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp
                /usr/include/x86_64-linux-gnu/openblas-openmp NO_DEFAULT_PATH)
if(NOT LTLAB_OPENBLAS_LIBRARY OR NOT LTLAB_OPENBLAS_INCLUDE_DIR)
  message(FATAL_ERROR "OpenBLAS (OpenMP) not found: run tools/install-deps.sh "
                      "(packages libopenblas0-openmp libopenblas-openmp-dev)")
endif()
get_filename_component(LTLAB_OPENBLAS_DIR "${LTLAB_OPENBLAS_LIBRARY}" DIRECTORY)
add_library(ltlab::openblas SHARED IMPORTED)
set_target_properties(ltlab::openblas PROPERTIES
  IMPORTED_LOCATION "${LTLAB_OPENBLAS_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${LTLAB_OPENBLAS_INCLUDE_DIR}")
message(STATUS "OpenBLAS: ${LTLAB_OPENBLAS_LIBRARY}")

if(LTLAB_BUILD_UI)
  find_package(Qt6 6.4 REQUIRED COMPONENTS Core Gui Widgets OpenGLWidgets Concurrent Svg PrintSupport Test)
  find_package(QCustomPlotQt6 REQUIRED)
  # Never VTK::GUISupportQt: Debian builds it for Qt 5 (ui/vtk_widget.h embeds VTK itself).
  find_package(VTK 9.1 REQUIRED COMPONENTS CommonCore CommonDataModel FiltersSources FiltersCore RenderingCore
               RenderingOpenGL2 IOImage InteractionStyle RenderingFreeType IOExportGL2PS RenderingGL2PSOpenGL2
               RenderingAnnotation) # vtkAxesActor: the 3D view's axis triad
endif()
